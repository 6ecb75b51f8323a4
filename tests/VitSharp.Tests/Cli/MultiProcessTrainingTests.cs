using VitSharp.Checkpoints;
using VitSharp.Tests.Training;
using VitSharp.Training;

namespace VitSharp.Tests.Cli;

/// <summary>`vit train --gpus 2 --device cpu`: two CPU processes (the TCP communicator) train the model one process
/// trains with the same global batch, within the stated data-parallel tolerance; rank 0 alone prints and writes.</summary>
[Collection("cli")]
public class MultiProcessTrainingTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-cli-ddp-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    // No job variables from the test host's environment: the launcher sets its own.
    private static readonly Dictionary<string, string?> NoJob = new()
    {
        ["RANK"] = null, ["WORLD_SIZE"] = null, ["LOCAL_RANK"] = null, ["LOCAL_WORLD_SIZE"] = null, ["MASTER_ADDR"] = null, ["MASTER_PORT"] = null,
    };

    [Fact]
    public void TwoCpuProcessesTrainTheOneProcessModel()
    {
        var data = DataTests.MakeArchive(gzip: false); // train/ and test/, 3 classes × 4 images of 8×8
        var config = Path.Combine(_tmp, "tiny.json");
        // Global batch 4 (2 per rank), 3 steps an epoch, 2 epochs; shuffling, crop and flip on (seeded per sample).
        File.WriteAllText(config, """
            {
              "model": { "architecture": "vit", "img_size": 8, "patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_dim": 16 },
              "data": { "crop_padding": 1, "horizontal_flip": true },
              "optimizer": { "name": "adamw", "lr": 0.01 },
              "batch_size": 4, "epochs": 2, "log_every_steps": 1, "seed": 5
            }
            """);
        var one = Path.Combine(_tmp, "one");
        var (code, stdout, err) = CliRunner.Run("train", "-C", config, "--data", data, "-o", one, "--device", "cpu");
        Assert.True(code == 0, err);

        var two = Path.Combine(_tmp, "two");
        var vit = Path.Combine(AppContext.BaseDirectory, "vit.dll"); // `dotnet vit.dll`: the launcher starts dotnet vit.dll per rank
        (code, stdout, err) = Repo.Run(Repo.Dotnet, [vit, "train", "--gpus", "2", "--device", "cpu", "-C", config, "--data", data, "-o", two],
            TimeSpan.FromSeconds(120), NoJob);
        Assert.True(code == 0, $"exit {code}: {err}");
        Assert.Single(stdout.Split('\n'), l => l.StartsWith("done: 6 steps", StringComparison.Ordinal)); // rank 1's stdout is not forwarded
        Assert.Contains("data parallel: rank 0 of 2 (tcp)", stdout);
        Assert.DoesNotContain("rank 1 of 2", stdout);
        var log = File.ReadAllLines(Path.Combine(two, Trainer.LogFile));
        Assert.Equal(6, log.Count(l => l.Contains("\"kind\":\"step\""))); // rank 0 alone logs
        Assert.Equal(2, log.Count(l => l.Contains("\"kind\":\"eval\"")));

        var a = SafeTensors.Read(Path.Combine(one, Trainer.CheckpointFile));
        var b = SafeTensors.Read(Path.Combine(two, Trainer.CheckpointFile));
        var (w, m) = DataParallelTests.MaxRelDiff(a, b);
        Assert.True(w <= DataParallelTests.Tolerance, $"weights differ by {w:E2} of their largest magnitude (tolerance {DataParallelTests.Tolerance:E0})");
        Assert.True(m <= DataParallelTests.Tolerance, $"Adam moments differ by {m:E2}");
        Assert.Equal(Checkpoint.Load(Path.Combine(one, Trainer.ModelFile)).Labels, Checkpoint.Load(Path.Combine(two, Trainer.ModelFile)).Labels);

        // --gpus 1: one child process, a world of one, i.e. the plain single rank: the same bytes as the plain run.
        var single = Path.Combine(_tmp, "single");
        (code, stdout, err) = Repo.Run(Repo.Dotnet, [vit, "train", "--gpus", "1", "--device", "cpu", "-C", config, "--data", data, "-o", single],
            TimeSpan.FromSeconds(120), NoJob);
        Assert.True(code == 0, $"exit {code}: {err}");
        Assert.DoesNotContain("data parallel", stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(one, Trainer.ModelFile)), File.ReadAllBytes(Path.Combine(single, Trainer.ModelFile)));
        var c = SafeTensors.Read(Path.Combine(single, Trainer.CheckpointFile));
        Assert.All(a, kv => Assert.True(kv.Value.Data.AsSpan().SequenceEqual(c[kv.Key].Data), kv.Key));
    }

    [Fact]
    public void ARankThatFailsIsNamedWithItsCode()
    {
        var data = DataTests.MakeArchive(gzip: false);
        var config = Path.Combine(_tmp, "odd.json");
        File.WriteAllText(config, """
            { "model": { "architecture": "vit", "img_size": 8, "patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_dim": 16 }, "batch_size": 3 }
            """);
        var vit = Path.Combine(AppContext.BaseDirectory, "vit.dll");
        var (code, _, err) = Repo.Run(Repo.Dotnet, [vit, "train", "--gpus", "2", "--device", "cpu", "-C", config, "--data", data, "-o", Path.Combine(_tmp, "odd")],
            TimeSpan.FromSeconds(120), NoJob);
        Assert.Equal(1, code);
        Assert.Contains("batch_size 3 is the global batch and must divide by the 2 ranks", err);
        Assert.Matches(@"error: rank [01] of 2 exited with code 1; stopped the other ranks\s*$", err);
    }

    [Fact]
    public void GpusOutOfRangeIsOneLine()
    {
        var (code, _, err) = CliRunner.Run("train", "-C", "missing.json", "--gpus", "0");
        Assert.Equal(1, code);
        Assert.Equal("error: --gpus must be at least 1, not 0", err.Trim());
        (code, _, err) = CliRunner.Run("train", "-C", "missing.json", "--gpus", "2", "--device", "cuda:1");
        Assert.Equal(1, code);
        Assert.Equal("error: --gpus gives rank r the device cuda:r; pass --device cuda (or cpu), not cuda:1", err.Trim());
    }
}
