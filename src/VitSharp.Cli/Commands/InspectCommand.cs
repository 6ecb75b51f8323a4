using System.CommandLine;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit inspect`: what a model learned (the ViT paper's figure 7, a Mixer's token-mixing weights) as one
/// self-contained report.html plus PNGs, .npy arrays and inspection.json in a folder (<see cref="InspectionReport"/>).</summary>
public sealed class InspectCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions();
        var output = new Option<string>("--output", "-o") { Description = "folder for report.html, the PNGs, the .npy arrays and inspection.json", Required = true };
        var inputs = new Option<string[]>("--input", "-i", "--image")
        {
            Description = "images, image folders or normalised NCHW .npy arrays (as vit run takes) for the attention views",
            AllowMultipleArgumentsPerToken = true,
        };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing for image inputs: timm, google, hf or a .json (default: what fits the checkpoint)" };
        var components = new Option<int>("--components") { Description = "principal components of the patch filters to draw", DefaultValueFactory = _ => 28 };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "print nothing on success" };
        var json = new Option<bool>("--json") { Description = "print the report's path and the files written as JSON" };
        var cmd = new Command("inspect", "an HTML report of what a model learned: filter components, position similarity, attention distance, rollout");
        ck.AddTo(cmd);
        foreach (var o in new Option[] { output, inputs, recipe, components, quiet, json }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dir = r.GetValue(output)!;
            using var backend = ck.Backend(r);
            using var classifier = Classifier.Load(r.GetValue(ck.Checkpoint)!, ck.Load(r), backend, ClassifyCommand.RecipeOption(r.GetValue(recipe)));
            var given = InspectionReport.LoadInputs(r.GetValue(inputs) ?? [], classifier.Recipe, classifier.Model.Config);
            var report = InspectionReport.Build(classifier, given, r.GetValue(components));
            var files = report.Write(dir);
            if (r.GetValue(json))
                Console.WriteLine(new System.Text.Json.Nodes.JsonObject
                {
                    ["report"] = Path.Combine(dir, "report.html"),
                    ["files"] = new System.Text.Json.Nodes.JsonArray(files.Select(f => (System.Text.Json.Nodes.JsonNode)Path.GetFileName(f)).ToArray()),
                }.ToJsonString());
            else if (!r.GetValue(quiet))
                Console.WriteLine($"wrote {files.Count} files to {dir}: open {Path.Combine(dir, "report.html")}");
            return 0;
        }));
        return cmd;
    }
}
