using VitSharp.Data.Datasets;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>eval_every_epochs / checkpoint_every_epochs: long GPU runs evaluate and save every few epochs, and always
/// after the last one.</summary>
public class EvalCadenceTests
{
    [Fact]
    public void EvaluatesAndSavesEveryNthEpochAndAfterTheLast()
    {
        var dir = Directory.CreateTempSubdirectory("vitsharp-cadence-").FullName;
        try
        {
            var data = Subset.PerClass(DataSources.Open(Path.Combine(AppContext.BaseDirectory, "Data", "cifar10-test-slice"), null), 1);
            var cfg = TrainConfig.Parse("""
                {
                  "model": { "architecture": "vit", "img_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 1, "mlp_dim": 32 },
                  "batch_size": 10, "epochs": 5, "seed": 1, "data": { "workers": 1 },
                  "eval_every_epochs": 2, "checkpoint_every_epochs": 3
                }
                """, [$"output={System.Text.Json.Nodes.JsonValue.Create(dir).ToJsonString()}"]);
            var events = new List<TrainEvent>();
            using (var t = new Trainer(cfg, data, data) { OnEvent = events.Add }) Assert.Equal(5, t.Run().Steps);
            // One step per epoch (10 images, batch 10): evaluations after epochs 2, 4 and 5; checkpoints after 3 and 5.
            Assert.Equal([2L, 4, 5], events.Where(e => e.Kind == "eval").Select(e => e.Step));
            Assert.Equal([3L, 5], events.Where(e => e.Kind == "checkpoint").Select(e => e.Step));
            Assert.True(File.Exists(Path.Combine(dir, Trainer.ModelFile)));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData("eval_every_epochs=0", "eval_every_epochs")]
    [InlineData("checkpoint_every_epochs=-1", "checkpoint_every_epochs")]
    public void NonPositiveCadenceIsRefused(string set, string key)
    {
        var e = Assert.Throws<VitSharpException>(() => TrainConfig.Parse("""{ "model": { "architecture": "vit" } }""", [set]));
        Assert.Contains(key, e.Message);
    }
}
