using VitSharp.Data.Datasets;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>A run folder holding another configuration's checkpoint is refused (naming the keys that differ) unless the
/// caller asks to resume it anyway; the same configuration resumes and says from where.</summary>
public class ResumeFolderTests
{
    private static IImageDataset Data() =>
        Subset.PerClass(DataSources.Open(Path.Combine(AppContext.BaseDirectory, "Data", "cifar10-test-slice"), null), 2);

    private static TrainConfig Config(string output, float lr) => TrainConfig.Parse($$"""
        {
          "model": { "architecture": "vit", "img_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 1, "mlp_dim": 32 },
          "optimizer": { "name": "adamw", "lr": {{lr.ToString(System.Globalization.CultureInfo.InvariantCulture)}} },
          "batch_size": 10, "epochs": 1, "seed": 1, "data": { "workers": 1 }
        }
        """, [$"output={System.Text.Json.Nodes.JsonValue.Create(output).ToJsonString()}"]);

    [Fact]
    public void AnotherRunsFolderIsRefusedUnlessResumeIsForced()
    {
        var dir = Directory.CreateTempSubdirectory("vitsharp-runfolder-").FullName;
        try
        {
            var data = Data();
            using (var t = new Trainer(Config(dir, 1e-3f), data, null)) Assert.Equal(2, t.Run().Steps);

            // Same configuration: resumes (nothing left to do) and reports where from.
            var events = new List<TrainEvent>();
            using (var t = new Trainer(Config(dir, 1e-3f), data, null) { OnEvent = events.Add }) Assert.Equal(2, t.Run().Steps);
            var resume = Assert.Single(events, e => e.Kind == "resume");
            Assert.Equal(2, resume.Step);
            Assert.EndsWith(Trainer.CheckpointFile, resume.Path);

            // Another learning rate: refused in one line naming the key.
            using (var t = new Trainer(Config(dir, 5e-3f), data, null))
            {
                var e = Assert.Throws<VitSharpException>(() => t.Run());
                Assert.Contains("optimizer.lr", e.Message);
                Assert.Contains("--resume", e.Message);
                Assert.DoesNotContain('\n', e.Message);
            }
            // Forced: resumes.
            using (var t = new Trainer(Config(dir, 5e-3f), data, null) { ResumeOtherConfig = true }) Assert.Equal(2, t.Run().Steps);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
