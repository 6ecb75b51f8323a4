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

    [Fact]
    public void OrphanTemporaryFilesAreRemovedAsARunStarts()
    {
        var dir = Directory.CreateTempSubdirectory("vitsharp-orphans-").FullName;
        try
        {
            int dead = int.MaxValue - 7; // no such process
            string Tmp(string file, int pid) => Path.Combine(dir, $".{file}.{pid}.{Guid.NewGuid():N}.tmp");
            // Left by a run killed mid-write: the checkpoint, the model, and a file this run never writes (so only the
            // removal at start, not a later write of the same file, can take it).
            var orphans = new[] { Tmp(Trainer.CheckpointFile, dead), Tmp(Trainer.ModelFile, dead), Tmp("best.v2.safetensors", dead) };
            // Kept: a live writer's temporary file, and files that are not an atomic write's.
            var kept = new[] { Tmp("best.safetensors", Environment.ProcessId), Path.Combine(dir, "notes.tmp"),
                Path.Combine(dir, $".x.{dead}.not-a-guid.tmp"), Path.Combine(dir, $"x.{dead}.{Guid.NewGuid():N}.tmp") };
            foreach (var f in orphans.Concat(kept)) File.WriteAllBytes(f, [1, 2, 3]);

            var events = new List<TrainEvent>();
            using (var t = new Trainer(Config(dir, 1e-3f), Data(), null) { OnEvent = events.Add }) Assert.Equal(2, t.Run().Steps);
            Assert.All(orphans, f => Assert.False(File.Exists(f), f));
            Assert.All(kept, f => Assert.True(File.Exists(f), f));
            // Removed before the run's first step or write, each reported.
            var removed = events.TakeWhile(e => e.Kind == "orphan_removed").Select(e => e.Path).Order(StringComparer.Ordinal);
            Assert.Equal(orphans.Order(StringComparer.Ordinal), removed);
            Assert.Equal(3, events.Count(e => e.Kind == "orphan_removed"));
            Assert.True(File.Exists(Path.Combine(dir, Trainer.ModelFile)));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
