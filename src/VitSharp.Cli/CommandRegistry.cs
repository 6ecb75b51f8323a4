using System.CommandLine;
using VitSharp.Cli.Commands;

namespace VitSharp.Cli;

/// <summary>A `vit` sub-command. Each lives in its own file under Commands/ and only parses options and calls a facade.</summary>
public interface ICliCommand
{
    Command Create();
}

public static class CommandRegistry
{
    /// <summary>Every sub-command, listed rather than found by reflection, so a trimmed publish keeps them all (a test
    /// checks that the list holds every <see cref="ICliCommand"/> of the assembly).</summary>
    public static IReadOnlyList<ICliCommand> All { get; } =
    [
        new BenchCommand(),
        new BenchTrainCommand(),
        new ClassifyCommand(),
        new ConvertCommand(),
        new CudaSelfTestCommand(),
        new DemoCommand(),
        new EmbedCommand(),
        new EvalCommand(),
        new ExportCommand(),
        new FinetuneCommand(),
        new InfoCommand(),
        new InitCommand(),
        new InspectCommand(),
        new PresetsCommand(),
        new QuantizeCommand(),
        new RunCommand(),
        new ServeCommand(),
        new TrainCommand(),
        new ZeroShotCommand(),
    ];

    public static RootCommand Build()
    {
        var root = new RootCommand("VitSharp: Vision Transformers in pure C#");
        foreach (var c in All.OrderBy(c => c.GetType().Name)) root.Subcommands.Add(c.Create());
        return root;
    }
}
