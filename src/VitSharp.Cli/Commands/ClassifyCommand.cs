using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Data.Codecs;
using VitSharp.Data.Transforms;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit classify`: image files or folders in, top-k classes out, with the preprocessing that fits the checkpoint.</summary>
public sealed class ClassifyCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions(defaultModel: true);
        var images = new Argument<string[]>("images") { Description = "image files (PNG, JPEG, BMP, PPM/PGM) or folders", Arity = ArgumentArity.OneOrMore };
        var topK = new Option<int>("--top-k", "-k") { Description = "classes to show per image", DefaultValueFactory = _ => 5 };
        var labels = new Option<string?>("--labels") { Description = "class names: a text file (one a line) or a JSON array" };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing: timm, google, hf, or a recipe .json (default: what fits the checkpoint)" };
        var json = new Option<bool>("--json") { Description = "print JSON instead of text" };
        var batch = SharedOptions.BatchSize(16, legacyBatch: true);
        var cmd = new Command("classify", "classify images with a checkpoint");
        ck.AddTo(cmd);
        ck.AddDType(cmd);
        cmd.Arguments.Add(images);
        foreach (var o in new Option[] { topK, labels, recipe, json, batch }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            if (r.GetValue(topK) < 1) throw new VitSharpException($"--top-k must be at least 1, not {r.GetValue(topK)}");
            var files = Classifier.ExpandImagePaths(r.GetValue(images)!);
            if (files.Count == 0) throw new VitSharpException("no image files found");
            using var backend = ck.Backend(r);
            using var classifier = Classifier.Load(ck.CheckpointPath(r), ck.Load(r), backend,
                RecipeOption(r.GetValue(recipe)), r.GetValue(labels) is string l ? Labels.Read(l) : null, ck.DType(r),
                r.GetValue(ck.Calibration), ck.CalibrationImageCount(r));
            var output = new JsonArray();
            int failed = 0;
            // A file that does not decode is reported on its own line (and in --json); the others still run.
            foreach (var chunk in ImageFiles.DecodeInBatches(files, r.GetValue(batch)))
            {
                foreach (var bad in chunk.Errors)
                {
                    failed++;
                    Cli.ReportFileError(bad);
                    if (r.GetValue(json)) output.Add((JsonNode)new JsonObject { ["image"] = bad.File, ["error"] = bad.Message });
                }
                if (chunk.Images.Count == 0) continue;
                var results = classifier.ClassifyBatch(chunk.Images, r.GetValue(topK));
                for (int i = 0; i < chunk.Files.Count; i++)
                {
                    if (r.GetValue(json))
                        output.Add((JsonNode)Cli.TopJson(chunk.Files[i], results[i].Select(p => (p.Index, (string?)p.Label, p.Probability, p.Logit))));
                    else
                    {
                        Console.WriteLine(chunk.Files[i]);
                        foreach (var p in results[i])
                            Console.WriteLine($"  {p.Probability,8:P2}  {p.Index,5}  {p.Label ?? ""}");
                    }
                }
            }
            if (r.GetValue(json)) Console.WriteLine(output.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return Cli.BatchExitCode(failed, files.Count);
        }));
        return cmd;
    }

    internal static PreprocessRecipe? RecipeOption(string? value)
    {
        if (value is null) return null;
        if (value.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return PreprocessRecipe.Load(value);
        try { return PreprocessRecipe.Named(value); }
        catch (ArgumentException e) { throw new VitSharpException(e.Message); }
    }
}
