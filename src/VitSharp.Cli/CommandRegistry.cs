using System.CommandLine;
using System.Reflection;

namespace VitSharp.Cli;

/// <summary>A `vit` sub-command. Each lives in its own file under Commands/ and only parses options and calls a facade.</summary>
public interface ICliCommand
{
    Command Create();
}

public static class CommandRegistry
{
    public static RootCommand Build()
    {
        var root = new RootCommand("VitSharp: Vision Transformers in pure C#");
        foreach (var t in typeof(CommandRegistry).Assembly.GetTypes()
                     .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
                     .OrderBy(t => t.Name))
            root.Subcommands.Add(((ICliCommand)Activator.CreateInstance(t)!).Create());
        return root;
    }
}
