using VitSharp.Checkpoints;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>An interrupted run continued from its checkpoint follows the uninterrupted run bit for bit; divergence stops
/// the run with a clear message and keeps the last good checkpoint.</summary>
public class ResumeTests
{
    private static string TempDir() => Directory.CreateTempSubdirectory("vitsharp-resume-").FullName;

    // Every source of randomness is on: shuffling, crop and flip, mixup/cutmix, dropout, drop path; plus accumulation and EMA.
    private static TrainConfig Config(string output) => TrainConfig.Parse("""
        {
          "model": { "architecture": "vit", "img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_dim": 64 },
          "data": { "crop_padding": 4, "horizontal_flip": true },
          "optimizer": { "name": "adamw", "lr": 0.002 },
          "schedule": { "warmup_steps": 3 },
          "batch_size": 16, "accumulation_steps": 2, "epochs": 3, "label_smoothing": 0.1,
          "mixup": 0.8, "cutmix": 1.0, "drop_rate": 0.1, "drop_path_rate": 0.1, "ema_decay": 0.9,
          "checkpoint_every_steps": 2, "log_every_steps": 1, "seed": 5
        }
        """, [$"output={System.Text.Json.JsonSerializer.Serialize(output)}"]);

    [SharedFact]
    public void InterruptedRunResumesExactly()
    {
        var train = Cifar.Slice(Cifar.Train, 0, 16); // 160 images: 5 steps of 2×16 per epoch, 15 in all
        var val = Cifar.Slice(Cifar.Test, 0, 4);

        var straightDir = TempDir();
        using (var t = new Trainer(Config(straightDir), train, val))
        {
            var r = t.Run();
            Assert.Equal(15, r.Steps);
            Straight = r.StepLosses.ToList();
        }

        var resumedDir = TempDir();
        var losses = new List<float>();
        using (var t = new Trainer(Config(resumedDir), train, val) { InterruptAfterStep = 4 })
        {
            var r = t.Run();
            Assert.True(r.Interrupted);
            losses.AddRange(r.StepLosses);
        }
        using (var t = new Trainer(Config(resumedDir), train, val) { InterruptAfterStep = 8 }) // crosses an epoch end
            losses.AddRange(t.Run().StepLosses);
        using (var t = new Trainer(Config(resumedDir), train, val))
        {
            var r = t.Run();
            Assert.False(r.Interrupted);
            losses.AddRange(r.StepLosses);
        }

        Assert.Equal(Straight.Count, losses.Count);
        for (int i = 0; i < losses.Count; i++)
            Assert.True(BitConverter.SingleToInt32Bits(Straight[i]) == BitConverter.SingleToInt32Bits(losses[i]), $"step {i + 1}: {Straight[i]:R} vs {losses[i]:R}");
        foreach (var file in new[] { Trainer.CheckpointFile, "model_ema.safetensors" })
        {
            var a = SafeTensors.Read(Path.Combine(straightDir, file));
            var b = SafeTensors.Read(Path.Combine(resumedDir, file));
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            foreach (var (k, v) in a) Assert.True(v.Data.AsSpan().SequenceEqual(b[k].Data), $"{file}: {k} differs");
        }
        // The resumed run's log reads as one run: one step line per step.
        var lines = File.ReadAllLines(Path.Combine(resumedDir, Trainer.LogFile));
        Assert.Contains(lines, l => l.Contains("\"kind\":\"eval_ema\""));
        var steps = lines.Count(l => l.Contains("\"kind\":\"step\""));
        Assert.Equal(15, steps);
    }

    private List<float> Straight = new();

    [SharedFact]
    public void DivergenceStopsAndKeepsLastGoodCheckpoint()
    {
        var dir = TempDir();
        // An absurd learning rate without clipping: the head's weights grow by ~lr per step and the logits overflow.
        var cfg = Config(dir) with { ClipGradNorm = 0, Optimizer = new OptimizerConfig { Name = "sgd", Lr = 1e37f, Momentum = 0 },
            Mixup = 0, Cutmix = 0, CheckpointEverySteps = 1, AccumulationSteps = 1, EmaDecay = 0 };
        var train = Cifar.Slice(Cifar.Train, 0, 8);
        using var t = new Trainer(cfg, train, null);
        var e = Assert.Throws<TrainingDivergedException>(() => t.Run());
        Assert.Matches("(NaN|∞|Infinity)", e.Message);
        Assert.Contains("last good checkpoint", e.Message);
        var ck = TrainCheckpoint.Load(Path.Combine(dir, Trainer.CheckpointFile));
        Assert.True(ck.State.Step >= 1);
        Assert.All(ck.Weights.Values, w => Assert.All(w.Data, v => Assert.True(float.IsFinite(v))));
    }
}
