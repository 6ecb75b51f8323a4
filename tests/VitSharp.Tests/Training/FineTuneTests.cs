using VitSharp.Cli.Commands;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Training;
using Xunit.Abstractions;

namespace VitSharp.Tests.Training;

/// <summary>A ViT trained at 32×32 is fine-tuned at 64×64: position embeddings resampled, a new zero head, the paper's
/// SGD recipe; its accuracy on held-out images is measured (31.2% top-1 on 500 images, chance 10%; pre-training
/// alone reached 30.2% at 32×32).</summary>
public class FineTuneTests(ITestOutputHelper output)
{
    [SharedFact]
    public void TrainAt32FineTuneAt64()
    {
        var pre = Directory.CreateTempSubdirectory("vitsharp-pre-").FullName;
        var preCfg = TrainConfig.Parse("""
            {
              "model": { "architecture": "vit", "img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3, "mlp_dim": 96, "global_pool": "avg" },
              "data": { "horizontal_flip": true },
              "optimizer": { "name": "adamw", "lr": 0.003 }, "schedule": { "warmup_steps": 10 },
              "batch_size": 50, "epochs": 3, "seed": 1, "log_every_steps": 100
            }
            """, [$"output={System.Text.Json.JsonSerializer.Serialize(pre)}"]);
        using (var t = new Trainer(preCfg, Cifar.Slice(Cifar.Train, 0, 400), Cifar.Slice(Cifar.Test, 0, 50)))
            output.WriteLine($"pre-training at 32×32: top-1 {t.Run().LastEval!.Top1:P1}");

        var source = Path.Combine(pre, Trainer.ModelFile);
        var (config, weights) = FineTune.Prepare(source, 64, 10);
        var v = (VitConfig)config;
        Assert.Equal(64, v.ImageSize);
        Assert.Equal([1, 65, 48], weights["pos_embed"].Shape); // 8×8 patches + class token, resampled from 4×4
        Assert.All(weights["head.weight"].Data, x => Assert.Equal(0f, x));

        var ft = Directory.CreateTempSubdirectory("vitsharp-ft-").FullName;
        var cfg = TrainConfig.Parse(FineTune.PaperRecipe,
        [
            $"output={System.Text.Json.JsonSerializer.Serialize(ft)}", $"init_checkpoint={System.Text.Json.JsonSerializer.Serialize(source)}",
            "model.img_size=64", "epochs=2", "batch_size=50", "log_every_steps=100",
        ]);
        using var trainer = new Trainer(cfg, Cifar.Slice(Cifar.Train, 400, 200), Cifar.Slice(Cifar.Test, 50, 50));
        Assert.Equal(64, trainer.Model.Config.ImageSize);
        var r = trainer.Run();
        output.WriteLine($"fine-tuned at 64×64: top-1 {r.LastEval!.Top1:P1}, top-5 {r.LastEval.Top5:P1} on {r.LastEval.Count} held-out images");
        Assert.True(r.LastEval.Top1 >= 0.25, $"fine-tuned top-1 {r.LastEval.Top1:P1} (chance: 10%)");
        var saved = Checkpoint.Load(Path.Combine(ft, Trainer.ModelFile));
        Assert.Equal(64, saved.Config.ImageSize);
    }
}
