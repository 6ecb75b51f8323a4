using System.CommandLine;

namespace VitSharp.Cli;

public static class Commands
{
    public static RootCommand Build()
    {
        var root = new RootCommand("VitSharp: Vision Transformers in pure C#");
        return root;
    }
}
