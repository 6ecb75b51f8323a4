using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Checkpoints;

namespace VitSharp.Cli.Commands;

/// <summary>`vit info`: the configuration a checkpoint implies, its parameter count and the family it was read as (and
/// why), as JSON; for a checkpoint VitSharp refuses, the tensors it could not place with the nearest names it knows.</summary>
public sealed class InfoCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions(defaultModel: true);
        var cmd = new Command("info", "print a checkpoint's inferred configuration and parameter count as JSON");
        ck.AddTo(cmd, device: false);
        cmd.Options.Add(new Option<bool>("--json") { Description = "JSON output (what info always prints; accepted as on the other commands)" });
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var d = Diagnosis.Of(ck.CheckpointPath(r), ck.Load(r));
            var indented = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            if (d.Error is not null)
            {
                if (d.UnplacedTensors.Count > 0)
                    Console.WriteLine(new JsonObject
                    {
                        ["checkpoint"] = d.Path,
                        ["refused"] = d.Error,
                        ["family"] = d.Family,
                        ["unplaced"] = new JsonArray([.. d.UnplacedTensors.Select(u => (JsonNode)new JsonObject
                        {
                            ["tensor"] = u.Name,
                            ["shape"] = new JsonArray([.. u.Shape.Select(x => (JsonNode)x)]),
                            ["nearest"] = new JsonArray([.. u.Nearest.Select(n => (JsonNode)n)]),
                        })]),
                        ["advice"] = d.Advice,
                    }.ToJsonString(indented));
                throw new VitSharpException(d.Error + (d.UnplacedTensors.Count > 0 ? $" ({d.UnplacedTensors.Count} tensor(s) unplaced, listed on stdout)" : ""));
            }
            var ckpt = d.Checkpoint!;
            var json = new JsonObject
            {
                ["checkpoint"] = ckpt.Path,
                ["format"] = ckpt.Format,
                ["family"] = d.Family,
                ["family_reason"] = d.Reason,
                ["config"] = ckpt.Config.ToJson(),
                ["parameters"] = ckpt.Weights.Values.Sum(w => w.Count),
                // The class names classify, eval and serve will use: the checkpoint's own, else ImageNet's for 1000 classes.
                ["labels"] = Inference.Recipes.DefaultLabels(ckpt)?.Length ?? 0,
                ["labels_source"] = ckpt.Labels is not null ? "checkpoint" : Inference.Recipes.DefaultLabels(ckpt) is not null ? "imagenet" : "none",
                ["metadata"] = ckpt.Metadata?.ToJsonObject(), // the record a VitSharp-written file carries (null: none)
            };
            Console.WriteLine(json.ToJsonString(indented));
            return 0;
        }));
        return cmd;
    }
}
