using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Data.Codecs;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Cli.Commands;

/// <summary>`vit inspect`: what a ViT learned (the paper's figure 7), written as PNGs and JSON into a folder.</summary>
public sealed class InspectCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions();
        var output = new Option<string>("--output", "-o") { Description = "folder for the PNGs and inspection.json", Required = true };
        var images = new Option<string[]>("--image") { Description = "images for attention maps and attention distance", AllowMultipleArgumentsPerToken = true };
        var components = new Option<int>("--components") { Description = "principal components of the patch filters to draw", DefaultValueFactory = _ => 28 };
        var cmd = new Command("inspect", "patch-filter components, position-embedding similarity, attention distance and rollout maps");
        ck.AddTo(cmd);
        foreach (var o in new Option[] { output, images, components }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dir = r.GetValue(output)!;
            Directory.CreateDirectory(dir);
            using var backend = ck.Backend(r);
            using var classifier = Classifier.Load(r.GetValue(ck.Checkpoint)!, ck.Load(r), backend);
            var ckpt = classifier.Checkpoint;
            if (ckpt.Config is not VitConfig vit) throw new VitSharpException("inspect needs a Vision Transformer (attention, position embeddings)");
            var report = new JsonObject { ["checkpoint"] = ckpt.Path, ["config"] = vit.ToJson(), ["metadata"] = classifier.Metadata.ToJsonObject() };

            var (pcs, variance) = Inspection.PatchEmbeddingPca(ckpt.Weights["patch_embed.proj.weight"], r.GetValue(components));
            ImageCodecs.Save(Render.Filters(pcs, columns: 7), Path.Combine(dir, "patch_embedding_pca.png"));
            report["patch_embedding_explained_variance"] = new JsonArray(variance.Select(v => (JsonNode)Math.Round(v, 6)).ToArray());

            var sim = Inspection.PositionSimilarity(ckpt.Weights["pos_embed"], vit.PrefixTokens, vit.GridSize, vit.GridSize);
            ImageCodecs.Save(Render.SimilarityGrid(sim, vit.GridSize), Path.Combine(dir, "position_embedding_similarity.png"));

            var files = r.GetValue(images) ?? [];
            if (files.Length > 0)
            {
                var decoded = Classifier.ExpandImagePaths(files).Select(f => ImageCodecs.Decode(f)).ToList();
                using var batch = classifier.Recipe.ApplyBatch(decoded);
                using var x = backend.Allocate(batch.Shape, backend.ComputeType);
                backend.CopyFromHost(batch.Span, x);
                using var result = classifier.Model.Forward(x, captureAttention: true);
                var probs = result.AttentionProbs.Select(p =>
                {
                    var host = new float[p.Length];
                    backend.CopyToHost(p, host);
                    return new HostArray(p.Shape, host);
                }).ToList();
                var distance = Inspection.AttentionDistance(probs, vit.PrefixTokens, vit.GridSize, vit.PatchSize);
                report["mean_attention_distance_px"] = new JsonArray(distance.Select(l => (JsonNode)new JsonArray(l.Select(v => (JsonNode)Math.Round(v, 3)).ToArray())).ToArray());
                if (vit.ClassToken)
                    for (int i = 0; i < decoded.Count; i++)
                    {
                        var map = Inspection.AttentionRollout(probs, i, vit.GridSize);
                        var shown = Data.Transforms.Resize.Pil(decoded[i].ToRgb(), vit.ImageSize, vit.ImageSize, Data.Transforms.Interpolation.Bicubic);
                        ImageCodecs.Save(Render.Overlay(shown, map), Path.Combine(dir, $"attention_rollout_{i}.png"));
                    }
            }
            File.WriteAllText(Path.Combine(dir, "inspection.json"), report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {Directory.GetFiles(dir).Length} files to {dir}");
            return 0;
        }));
        return cmd;
    }
}
