namespace VitSharp.Cli;

/// <summary>
/// The model `vit classify`, `vit eval`, `vit info` and `vit serve` use without --checkpoint: the CIFAR-10 ViT shipped in
/// the repository's models/ folder (docs/MODELS.md). The CLI project copies it next to the assembly, into models/ of the
/// build and publish output and of the .NET tool package (tools/net10.0/any/models/), so it is found wherever `vit` runs
/// from, installed with `dotnet tool install` too; VITSHARP_DEFAULT_MODEL names another file.
/// </summary>
public static class DefaultModel
{
    public const string FileName = "cifar10_vit.bf16.safetensors";
    public const string EnvironmentVariable = "VITSHARP_DEFAULT_MODEL";

    /// <summary>Where the build and `dotnet publish` put the shipped model: models/ beside the assembly.</summary>
    public static string BundledPath => Path.Combine(AppContext.BaseDirectory, "models", FileName);

    /// <summary>The default model's path (VITSHARP_DEFAULT_MODEL, else <see cref="BundledPath"/>); a one-line error when absent.</summary>
    public static string Resolve()
    {
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        var path = string.IsNullOrEmpty(env) ? BundledPath : env;
        if (!File.Exists(path))
            throw new VitSharpException(string.IsNullOrEmpty(env)
                ? $"no --checkpoint given and the default model is missing: expected {path} (the build copies it from the repository's models/); pass --checkpoint PATH"
                : $"no --checkpoint given and {EnvironmentVariable} names a missing file: {path}; pass --checkpoint PATH");
        return path;
    }
}
