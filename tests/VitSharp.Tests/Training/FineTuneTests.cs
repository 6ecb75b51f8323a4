using VitSharp.Cli.Commands;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Training;
using Xunit.Abstractions;

namespace VitSharp.Tests.Training;

/// <summary>A ViT trained at 32×32 is fine-tuned at 64×64: position embeddings resampled, the trained head kept (the
/// same classes) or a new zero head (other classes), the paper's SGD recipe; its accuracy on held-out images is measured
/// (chance 10%).</summary>
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
        var trained = Checkpoint.Load(source);
        var (config, weights) = FineTune.Prepare(source, 64, 10);
        var v = (VitConfig)config;
        Assert.Equal(64, v.ImageSize);
        Assert.Equal([1, 65, 48], weights["pos_embed"].Shape); // 8×8 patches + class token, resampled from 4×4
        // The same ten classes: the trained head is kept, as timm keeps it when num_classes is unchanged.
        Assert.Equal(trained.Weights["head.weight"].Data, weights["head.weight"].Data);
        Assert.Equal(trained.Weights["head.bias"].Data, weights["head.bias"].Data);
        Assert.Contains(trained.Weights["head.weight"].Data, x => x != 0f);
        Assert.Equal(trained.Weights["head.weight"].Data, FineTune.Prepare(source, 64, 10, classNames: trained.Labels).Weights["head.weight"].Data);
        // Other classes (another count, other names, or --new-head): a new zero head.
        var five = FineTune.Prepare(source, 64, 5).Weights;
        Assert.Equal([5, 48], five["head.weight"].Shape);
        Assert.All(five["head.weight"].Data, x => Assert.Equal(0f, x));
        var renamed = trained.Labels!.Reverse().ToArray();
        Assert.All(FineTune.Prepare(source, 64, 10, classNames: renamed).Weights["head.weight"].Data, x => Assert.Equal(0f, x));
        Assert.All(FineTune.Prepare(source, 64, 10, newHead: true).Weights["head.bias"].Data, x => Assert.Equal(0f, x));

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
