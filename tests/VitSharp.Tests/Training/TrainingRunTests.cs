using System.Diagnostics;
using VitSharp.Data.Datasets;
using VitSharp.Training;
using Xunit.Abstractions;

namespace VitSharp.Tests.Training;

/// <summary>End-to-end training runs on real data from ../shared (skipped without it).</summary>
public class TrainingRunTests(ITestOutputHelper output)
{
    private static string TempDir() => Directory.CreateTempSubdirectory("vitsharp-train-").FullName;

    /// <summary>MNIST's 10,000 test images (the only split in ../shared): 2,000 to train on, 1,000 held out.</summary>
    private static (IImageDataset Train, IImageDataset Val) MnistSlices()
    {
        var all = IdxDataset.FromFolder(TestData.Shared("datasets", "mnist-t10k"), train: false);
        return (new Subset(all, Enumerable.Range(0, 2000).ToArray()), new Subset(all, Enumerable.Range(9000, 1000).ToArray()));
    }

    private static TrainConfig MnistConfig(string output) => TrainConfig.Parse("""
        {
          "model": { "architecture": "vit", "img_size": 28, "patch_size": 7, "in_chans": 1, "embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_dim": 64 },
          "data": { "mean": [0.1307], "std": [0.3081] },
          "optimizer": { "name": "adamw", "lr": 0.002, "weight_decay": 0.05 },
          "schedule": { "warmup_steps": 10 },
          "batch_size": 50, "epochs": 3, "label_smoothing": 0.1, "log_every_steps": 5, "seed": 3
        }
        """, [$"output=\"{output}\""]);

    [SharedFact]
    public void MnistSmallVitLearns()
    {
        var (train, val) = MnistSlices();
        var cfg = MnistConfig(TempDir());
        using var trainer = new Trainer(cfg, train, val);
        var sw = Stopwatch.StartNew();
        var r = trainer.Run();
        output.WriteLine($"MNIST: {r.Steps} steps in {sw.Elapsed.TotalSeconds:F1} s, top-1 {r.LastEval!.Top1:P1}");
        Assert.True(r.LastEval!.Top1 > 0.7, $"top-1 {r.LastEval.Top1:P1}");
    }
}

