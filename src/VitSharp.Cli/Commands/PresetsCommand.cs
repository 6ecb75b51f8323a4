using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using VitSharp.Models;

namespace VitSharp.Cli.Commands;

/// <summary>`vit presets`: the named model configurations as a table (parameters, GFLOPs at the preset's resolution,
/// image size, patch); --json prints each configuration as JSON.</summary>
public sealed class PresetsCommand : ICliCommand
{
    public Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print one JSON object per preset (name, config, parameters, gflops) instead of the table" };
        var cmd = new Command("presets", "list the named model configurations: parameters, GFLOPs, image size, patch");
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            if (r.GetValue(json))
            {
                var all = new JsonArray();
                foreach (var (name, c) in Presets.All)
                    all.Add((JsonNode)new JsonObject
                    {
                        ["name"] = name, ["config"] = c.ToJson(),
                        ["parameters"] = ModelCost.Parameters(c), ["gflops"] = Math.Round(ModelCost.ForwardFlops(c) / 1e9, 3),
                    });
                Console.WriteLine(all.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            foreach (var line in Table()) Console.WriteLine(line);
            return 0;
        });
        return cmd;
    }

    /// <summary>The table's lines: a header, then one preset a line (GFLOPs of one image's forward, 2 per multiply-add).</summary>
    public static IEnumerable<string> Table()
    {
        int w = Math.Max("name".Length, Presets.All.Keys.Max(k => k.Length));
        var inv = CultureInfo.InvariantCulture;
        yield return string.Format(inv, "{0} {1,9} {2,9} {3,6} {4,6}", "name".PadRight(w), "params M", "GFLOPs", "image", "patch");
        foreach (var (name, c) in Presets.All)
            yield return string.Format(inv, "{0} {1,9:F1} {2,9:F1} {3,6} {4,6}", name.PadRight(w),
                ModelCost.Parameters(c) / 1e6, ModelCost.ForwardFlops(c) / 1e9, c.ImageSize, c.PatchSize);
    }
}
