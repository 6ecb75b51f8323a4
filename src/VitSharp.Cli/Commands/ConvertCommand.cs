using System.CommandLine;
using VitSharp.Checkpoints;

namespace VitSharp.Cli.Commands;

/// <summary>`vit convert`: rewrites a safetensors checkpoint in another float type (bf16, f16, f32), keeping its
/// metadata (a VitSharp file's `vitsharp.model` record: config, preprocessing, class names). bf16 rounds to nearest even.</summary>
public sealed class ConvertCommand : ICliCommand
{
    public Command Create()
    {
        var input = new Option<string>("--checkpoint", "-c") { Description = "safetensors file to convert", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "safetensors file to write", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "bf16, f16 or f32", DefaultValueFactory = _ => "bf16" };
        var cmd = new Command("convert", "rewrite a safetensors checkpoint as bf16, f16 or f32, keeping its metadata");
        foreach (var o in new Option[] { input, output, dtype }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            string src = r.GetValue(input)!, dst = r.GetValue(output)!;
            var type = r.GetValue(dtype)!.ToLowerInvariant() switch
            {
                "bf16" => "BF16",
                "f16" or "fp16" => "F16",
                "f32" or "fp32" => "F32",
                var d => throw new VitSharpException($"--dtype must be bf16, f16 or f32, not '{d}'"),
            };
            if (!File.Exists(src)) throw new VitSharpException($"{src}: file not found");
            if (!SafeTensors.LooksLike(src)) throw new VitSharpException($"{src}: not a safetensors file (convert reads safetensors only)");
            var tensors = SafeTensors.Read(src, out var meta);
            SafeTensors.Write(dst, tensors, meta, type);
            Console.WriteLine($"{dst}: {tensors.Count} tensors, {tensors.Values.Sum(t => t.Count)} values as {type}, {new FileInfo(dst).Length} bytes");
            return 0;
        }));
        return cmd;
    }
}
