using System.CommandLine;
using VitSharp.Models;

namespace VitSharp.Cli.Commands;

/// <summary>`vit presets`: the named model configurations.</summary>
public sealed class PresetsCommand : ICliCommand
{
    public Command Create()
    {
        var cmd = new Command("presets", "list the named model configurations");
        cmd.SetAction(_ =>
        {
            foreach (var (name, c) in Presets.All) Console.WriteLine($"{name,-28} {c.ToJson().ToJsonString()}");
            return 0;
        });
        return cmd;
    }
}
