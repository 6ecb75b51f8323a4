using System.IO.Compression;

namespace VitSharp.Tests.Cli;

/// <summary>
/// `dotnet pack` as README shows it: the library package carries its XML docs, and the VitSharp.Cli tool package installs
/// with `dotnet tool install` from a local folder, offline (a temp nuget.config with only that folder, a temp package
/// cache), and its `vit` classifies with the model shipped inside the package; an app outside the repository builds on
/// the library package and classifies. Category Slow (10–40 s: two packs of the already built projects, one install,
/// one small build, four runs); leave it out with --filter "Category!=Slow".
/// </summary>
[Collection("cli")]
public class PackagingTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-pack-").FullName;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string Pack(string project, string feed)
    {
        // --no-build/--no-restore: the test build already built these projects in this configuration; nothing is fetched
        var (code, stdout, stderr) = Repo.Run(Repo.Dotnet,
            ["pack", Repo.At("src", project, project + ".csproj"), "-c", Repo.Configuration, "--no-build", "--no-restore", "-o", feed], Limit);
        Assert.True(code == 0, $"dotnet pack {project} exited {code}: {stdout}{stderr}");
        return Assert.Single(Directory.GetFiles(feed, project + ".*.nupkg"));
    }

    [RepoFact]
    [Trait("Category", "Slow")]
    public void ToolPackageInstallsOfflineAndClassifiesWithItsBundledModel()
    {
        var feed = Directory.CreateDirectory(Path.Combine(_tmp, "feed")).FullName;

        using (var lib = ZipFile.OpenRead(Pack("VitSharp", feed)))
        {
            var names = lib.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("lib/net10.0/VitSharp.dll", names);
            Assert.Contains("lib/net10.0/VitSharp.xml", names);
            Assert.Contains("README.md", names);
            using var nuspec = new StreamReader(lib.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open());
            Assert.Contains("System.Numerics.Tensors", nuspec.ReadToEnd()); // its one dependency
        }
        using (var tool = ZipFile.OpenRead(Pack("VitSharp.Cli", feed)))
        {
            var names = tool.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("tools/net10.0/any/vit.dll", names);
            Assert.Contains("tools/net10.0/any/DotnetToolSettings.xml", names);
            Assert.Contains("tools/net10.0/any/models/cifar10_vit.bf16.safetensors", names);
        }

        // Offline install: only the local folder as a source, and an empty package cache of its own.
        var config = Path.Combine(_tmp, "nuget.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        var tools = Path.Combine(_tmp, "tools");
        var env = new Dictionary<string, string?>
        {
            ["NUGET_PACKAGES"] = Path.Combine(_tmp, "packages"),
            ["VITSHARP_DEFAULT_MODEL"] = null, // the installed tool must find the model it ships
        };
        var (code, stdout, stderr) = Repo.Run(Repo.Dotnet,
            ["tool", "install", "VitSharp.Cli", "--tool-path", tools, "--configfile", config], Limit, env, cwd: _tmp);
        Assert.True(code == 0, $"dotnet tool install exited {code}: {stdout}{stderr}");
        Assert.Contains("vit", stdout);

        var vit = Path.Combine(tools, "vit");
        Assert.True(File.Exists(vit), $"{vit} missing after the install");
        (code, stdout, stderr) = Repo.Run(vit, ["--help"], Limit, env, cwd: _tmp);
        Assert.True(code == 0, $"vit --help exited {code}: {stderr}");
        foreach (var command in new[] { "classify", "train", "serve", "export", "inspect" }) Assert.Contains(command, stdout);

        var cat = Path.Combine(AppContext.BaseDirectory, "samples", "chelsea.png");
        (code, stdout, stderr) = Repo.Run(vit, ["classify", cat, "--top-k", "2"], Limit, env, cwd: _tmp);
        Assert.True(code == 0, $"vit classify exited {code}: {stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal([cat], lines[..1]);
        Assert.EndsWith(" cat", lines[1]); // measured: 56.66 % cat, then dog 24.03 %
        Assert.Contains("56.66", lines[1]);

        // the model it used is the one inside the installed package
        (code, stdout, stderr) = Repo.Run(vit, ["info"], Limit, env, cwd: _tmp);
        Assert.True(code == 0, $"vit info exited {code}: {stderr}");
        Assert.Contains(Path.Combine(tools, ".store", "vitsharp.cli"), stdout);

        // The library package as an application outside the repository takes it: a PackageReference restored from the
        // local folder alone (its dependency, System.Numerics.Tensors, from the machine's package cache as a fallback folder).
        var app = Directory.CreateDirectory(Path.Combine(_tmp, "consumer")).FullName;
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } c
            ? c : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(app, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <RestoreFallbackFolders>{cache}</RestoreFallbackFolders>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="VitSharp" Version="0.1.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using VitSharp.Inference;
            using var classifier = Classifier.Load(args[0]);
            var top = classifier.Classify(File.ReadAllBytes(args[1]), topK: 1);
            Console.WriteLine($"{top[0].Label} {top[0].Probability:F4}");
            """);
        File.Copy(config, Path.Combine(app, "nuget.config"));
        (code, stdout, stderr) = Repo.Run(Repo.Dotnet, ["build", app, "-c", "Release", "-o", Path.Combine(app, "out")], Limit, env, cwd: app);
        Assert.True(code == 0, $"building an app on the VitSharp package exited {code}: {stdout}{stderr}");
        (code, stdout, stderr) = Repo.Run(Repo.Dotnet, [Path.Combine(app, "out", "Consumer.dll"), Repo.At("models", "cifar10_vit.bf16.safetensors"), cat], Limit, env, cwd: app);
        Assert.True(code == 0, $"the app exited {code}: {stderr}");
        Assert.Equal("cat 0.5666", stdout.Trim());
    }
}
