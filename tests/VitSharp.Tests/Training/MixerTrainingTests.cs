using VitSharp.Data.Datasets;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>The trainer drives an MLP-Mixer as it drives a ViT (the Mixer's gradients are checked in FiniteDifferenceTests).</summary>
public class MixerTrainingTests
{
    [Fact]
    public void MixerFitsASmallDataset()
    {
        var data = FileListDataset.Open(DataTests.MakeArchive(gzip: false), "train", DataSources.Decoder); // 3 classes by gray level
        var cfg = TrainConfig.Parse("""
            {
              "model": { "architecture": "mixer", "img_size": 8, "patch_size": 4, "embed_dim": 16, "depth": 2, "token_mlp_dim": 8, "channel_mlp_dim": 32 },
              "optimizer": { "lr": 0.01, "weight_decay": 0 }, "schedule": { "decay": "constant" },
              "batch_size": 12, "epochs": 60, "label_smoothing": 0, "log_every_steps": 1000
            }
            """, [$"output={System.Text.Json.JsonSerializer.Serialize(Directory.CreateTempSubdirectory("vitsharp-mixer-").FullName)}"]);
        using var trainer = new Trainer(cfg, data, data);
        var r = trainer.Run();
        Assert.IsType<VitSharp.Models.MlpMixer>(trainer.Model);
        Assert.True(r.StepLosses[^1] < 0.3 * r.StepLosses[0], $"loss {r.StepLosses[0]:F3} → {r.StepLosses[^1]:F3}");
        Assert.Equal(1.0, r.LastEval!.Top1);
    }
}
