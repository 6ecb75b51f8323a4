using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Checkpoints;

namespace VitSharp.Cli.Commands;

/// <summary>`vit info`: the configuration a checkpoint implies and its parameter count, as JSON.</summary>
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
            var ckpt = Checkpoint.Load(ck.CheckpointPath(r), ck.Load(r));
            var json = new JsonObject
            {
                ["checkpoint"] = ckpt.Path,
                ["format"] = ckpt.Format,
                ["config"] = ckpt.Config.ToJson(),
                ["parameters"] = ckpt.Weights.Values.Sum(w => w.Count),
                // The class names classify, eval and serve will use: the checkpoint's own, else ImageNet's for 1000 classes.
                ["labels"] = Inference.Recipes.DefaultLabels(ckpt)?.Length ?? 0,
                ["labels_source"] = ckpt.Labels is not null ? "checkpoint" : Inference.Recipes.DefaultLabels(ckpt) is not null ? "imagenet" : "none",
                ["metadata"] = ckpt.Metadata?.ToJsonObject(), // the record a VitSharp-written file carries (null: none)
            };
            Console.WriteLine(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }));
        return cmd;
    }
}
