using System.CommandLine;
using System.Text.Json;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;

namespace VitSharp.Cli.Commands;

/// <summary>
/// `vit demo`: a walk-through with an untrained model (the main job is `vit classify samples/` with the shipped model).
/// Generates a small ViT checkpoint (seeded, so every machine gets the same one), prints what `vit info` reports, runs
/// it on a synthetic image and prints the top classes.
/// </summary>
public sealed class DemoCommand : ICliCommand
{
    public Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "preset to generate", DefaultValueFactory = _ => "vit_tiny_patch16_224" };
        var dir = new Option<string>("--dir") { Description = "where to keep the generated checkpoint", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "vitsharp-demo") };
        var cmd = new Command("demo", "generate a small ViT checkpoint, show its configuration and run it on the CPU");
        cmd.Options.Add(model);
        cmd.Options.Add(dir);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var name = r.GetValue(model)!;
            var path = Path.Combine(r.GetValue(dir)!, name + ".safetensors");
            var config = Presets.Get(name);
            if (!File.Exists(path)) Checkpoint.Save(path, config, Initializer.Init(config, seed: 0), preprocess: Data.Transforms.PreprocessRecipe.Timm(config.ImageSize));
            var ckpt = Checkpoint.Load(path);
            Console.WriteLine($"checkpoint: {path} ({ckpt.Format}, {ckpt.Weights.Values.Sum(w => w.Count):N0} parameters)");
            Console.WriteLine($"config: {ckpt.Config.ToJson().ToJsonString()}");
            using var vit = ckpt.CreateModel(CpuBackend.Instance);
            vit.PrepareForInference();
            var image = SyntheticImage(config.ImageSize);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var logits = vit.Run(image);
            sw.Stop();
            var top = logits.Data.Select((v, i) => (v, i)).OrderByDescending(t => t.v).Take(5)
                .Select(t => new { index = t.i, logit = MathF.Round(t.v, 4) });
            Console.WriteLine($"top-5 on a synthetic {config.ImageSize}×{config.ImageSize} image (untrained weights, {sw.ElapsedMilliseconds} ms): " +
                new System.Text.Json.Nodes.JsonArray(top.Select(t => (System.Text.Json.Nodes.JsonNode?)$"{t.index}:{t.logit}").ToArray()).ToJsonString());
            return 0;
        }));
        return cmd;
    }

    /// <summary>A smooth colour gradient, normalised to [-1, 1] like Google's checkpoints expect.</summary>
    private static HostArray SyntheticImage(int size)
    {
        var data = new float[3 * size * size];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    data[(c * size + y) * size + x] = MathF.Sin((x * (c + 1) + y * (3 - c)) * 0.02f);
        return new HostArray([1, 3, size, size], data);
    }
}
