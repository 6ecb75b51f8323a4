using System.Diagnostics;
using VitSharp.Training;
using Xunit.Abstractions;

namespace VitSharp.Tests.Training;

/// <summary>
/// The CIFAR-10 recipe (configs/cifar10_vit_tiny.json) trained on the CPU for a short budget, read straight from the
/// shared tar.gz: 2,500 images per class for 2 epochs (780 steps of 64), evaluated on 1,000 held-out test images.
/// Measured 37.8% top-1 (chance: 10%) in 61 s on the shared 2-core machine; the bar is 35%. The run is deterministic;
/// the figure moves only when kernels round differently (38.0% with the GEMM of an hour earlier).
/// </summary>
public class CifarTrainingTests(ITestOutputHelper output)
{
    public static string RepoFile(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "VitSharp.slnx"))) return Path.Combine([dir.FullName, .. parts]);
        throw new InvalidOperationException("repository root not found");
    }

    [SharedFact]
    public void SmallVitLearnsCifar10()
    {
        var dir = Directory.CreateTempSubdirectory("vitsharp-cifar-").FullName;
        // A short run: fewer epochs over half the training set, so no crop augmentation and a short warmup.
        var cfg = TrainConfig.Load(RepoFile("configs", "cifar10_vit_tiny.json"),
        [
            $"output={System.Text.Json.JsonSerializer.Serialize(dir)}", "epochs=2", "data.crop_padding=0", "drop_path_rate=0",
            "schedule.warmup_epochs=0.2", "log_every_steps=100",
        ]);
        var sw = Stopwatch.StartNew();
        using var trainer = new Trainer(cfg, Cifar.Slice(Cifar.Train, 0, 2500), Cifar.Slice(Cifar.Test, 0, 100));
        trainer.OnEvent = e =>
        {
            if (e.Kind == "step") output.WriteLine($"step {e.Step}/{e.TotalSteps} loss {e.Loss:F3} {e.ImagesPerSecond:F0} img/s");
            if (e.Kind == "eval") output.WriteLine($"epoch {e.Epoch}: top-1 {e.Eval!.Top1:P1}, top-5 {e.Eval.Top5:P1}");
        };
        var r = trainer.Run();
        output.WriteLine($"{r.Steps} steps in {sw.Elapsed.TotalSeconds:F0} s; top-1 {r.LastEval!.Top1:P1} on {r.LastEval.Count} test images");
        Assert.Equal(1000, r.LastEval.Count);
        Assert.True(r.LastEval.Top1 >= 0.35, $"top-1 {r.LastEval.Top1:P1} after {r.Steps} steps");
    }
}
