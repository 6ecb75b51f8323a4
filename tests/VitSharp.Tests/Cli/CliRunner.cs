using VitSharp.Cli;

namespace VitSharp.Tests.Cli;

/// <summary>Runs `vit` in-process and captures what it prints. Console is global, so CLI tests share one collection.</summary>
public static class CliRunner
{
    private static readonly object Gate = new();

    public static (int code, string stdout, string stderr) Run(params string[] args)
    {
        lock (Gate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            var (o, e) = (new StringWriter(), new StringWriter());
            Console.SetOut(o);
            Console.SetError(e);
            try { return (CommandRegistry.Build().Parse(args).Invoke(), o.ToString(), e.ToString()); }
            finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        }
    }
}

[CollectionDefinition("cli", DisableParallelization = true)]
public sealed class CliCollection;
