using System.CommandLine;
using VitSharp.Cli;

namespace VitSharp.Tests.Cli;

/// <summary>The shared option vocabulary (README's command list): the same names and short forms on every command.</summary>
public class VocabularyTests
{
    private static readonly Command Root = CommandRegistry.Build();

    private static Option? Find(string command, string name)
    {
        var cmd = Root.Subcommands.Single(c => c.Name == command);
        return cmd.Options.SingleOrDefault(o => o.Name == name || o.Aliases.Contains(name));
    }

    /// <summary>The registry lists its commands (a trimmed publish keeps only what is referenced): every
    /// <see cref="ICliCommand"/> of the CLI assembly is in it once, and every command name is distinct.</summary>
    [Fact]
    public void RegistryListsEveryCommandOnce()
    {
        var declared = typeof(CommandRegistry).Assembly.GetTypes()
            .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => t.Name).Order().ToArray();
        var listed = CommandRegistry.All.Select(c => c.GetType().Name).Order().ToArray();
        Assert.Equal(declared, listed);
        Assert.Equal(listed.Length, Root.Subcommands.Select(c => c.Name).Distinct().Count());
        Assert.Contains(Root.Subcommands, c => c.Name == "zeroshot");
    }

    public static TheoryData<string, string, string> Shared => new()
    {
        // command, long name, short alias
        { "train", "--checkpoint", "-c" }, { "finetune", "--checkpoint", "-c" }, { "eval", "--checkpoint", "-c" },
        { "classify", "--checkpoint", "-c" }, { "run", "--checkpoint", "-c" }, { "inspect", "--checkpoint", "-c" },
        { "export", "--checkpoint", "-c" }, { "info", "--checkpoint", "-c" },
        { "train", "--device", "-d" }, { "finetune", "--device", "-d" }, { "eval", "--device", "-d" },
        { "classify", "--device", "-d" }, { "run", "--device", "-d" }, { "inspect", "--device", "-d" },
        { "bench", "--device", "-d" }, { "bench-train", "--device", "-d" },
        { "train", "--batch-size", "-b" }, { "finetune", "--batch-size", "-b" }, { "eval", "--batch-size", "-b" },
        { "classify", "--batch-size", "-b" }, { "bench", "--batch-size", "-b" }, { "bench-train", "--batch-size", "-b" },
        { "train", "--output", "-o" }, { "finetune", "--output", "-o" }, { "run", "--output", "-o" },
        { "inspect", "--output", "-o" }, { "export", "--output", "-o" },
        { "train", "--config", "-C" }, { "finetune", "--config", "-C" },
    };

    [Theory, MemberData(nameof(Shared))]
    public void SharedOptionHasItsNameAndShortForm(string command, string name, string alias)
    {
        var o = Find(command, name);
        Assert.NotNull(o);
        Assert.Equal(name, o.Name);
        Assert.Contains(alias, o.Aliases);
    }

    [Fact]
    public void ShortCIsAlwaysCheckpoint()
    {
        foreach (var cmd in Root.Subcommands)
            foreach (var o in cmd.Options.Where(o => o.Aliases.Contains("-c")))
                Assert.Equal("--checkpoint", o.Name);
    }

    [Theory]
    [InlineData("classify"), InlineData("bench"), InlineData("bench-train")]
    public void OldBatchStaysAnAlias(string command)
    {
        var o = Find(command, "--batch-size")!;
        Assert.Contains("--batch", o.Aliases);
        var args = command == "classify" ? new[] { command, "x.png", "--batch", "3" } : [command, "--batch", "3"];
        var r = Root.Parse(args);
        Assert.Empty(r.Errors);
        Assert.Equal(3, r.GetValue((Option<int>)o));
        var args2 = command == "classify" ? new[] { command, "x.png", "-b", "7" } : [command, "-b", "7"];
        Assert.Equal(7, Root.Parse(args2).GetValue((Option<int>)o));
    }

    [Fact]
    public void DeviceDefaultsToCpuAndAutoPicksCudaOnlyWhenPresent()
    {
        var o = (Option<string>)Find("bench", "--device")!;
        Assert.Equal("cpu", Root.Parse(["bench"]).GetValue(o));
        Assert.Equal("auto", Root.Parse(["bench", "-d", "auto"]).GetValue(o));
        var expected = VitSharp.Backends.Cuda.CudaBackend.IsAvailable(out _) ? "cuda" : "cpu";
        Assert.Equal(expected, VitSharp.Cli.Backends.ResolveDevice("auto"));
        Assert.Equal(expected, VitSharp.Cli.Backends.ResolveDevice("AUTO"));
        Assert.Equal("cuda:1", VitSharp.Cli.Backends.ResolveDevice("cuda:1"));
        Assert.Equal("cpu", VitSharp.Cli.Backends.ResolveDevice(null));
    }
}
