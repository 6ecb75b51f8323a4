using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Data.Datasets;
using VitSharp.Training;
using VitSharp.Training.Distributed;

namespace VitSharp.Tests.Training;

/// <summary>
/// Data-parallel training on the CPU with the in-process communicator (N ranks, one thread each): N ranks × batch B
/// train the weights one rank × batch N·B trains, within the stated tolerance; ZeRO-1 gives the weights of plain data
/// parallelism; the ranks' shards are disjoint and cover the epoch; checkpoints resume on another world size; rank 0
/// alone writes.
/// </summary>
public class DataParallelTests
{
    /// <summary>The stated tolerance (docs/TRAINING.md, Multi-GPU): after 8 AdamW steps, every weight (and every Adam
    /// moment) within 1e-5 of the largest magnitude of its kind in the one-rank run; measured 2.9e-7 to 6.5e-7. The sums over the batch run in another order (per rank, then across
    /// ranks), so the fp32 results differ in the last bits, and Adam's normalisation keeps such differences small.</summary>
    public const double Tolerance = 1e-5;

    /// <summary>Random 16×16 RGB images, label = index mod classes: no files, no ../shared.</summary>
    public sealed class Synthetic(int count, int classes = 4, int seed = 1) : IImageDataset
    {
        private readonly Image[] _images = Enumerable.Range(0, count).Select(i =>
        {
            var px = new byte[16 * 16 * 3];
            new Random(seed * 7919 + i).NextBytes(px);
            return new Image(16, 16, 3, px);
        }).ToArray();
        public int Count => count;
        public IReadOnlyList<string> Classes { get; } = Enumerable.Range(0, classes).Select(c => $"c{c}").ToArray();
        public int Label(int index) => index % classes;
        public Image Load(int index) => _images[index];
    }

    private static string TempDir() => Directory.CreateTempSubdirectory("vitsharp-ddp-").FullName;

    // Shuffling, crop with padding and flip on (augmentation seeded by the global position); no mixup, dropout or drop path
    // (their masks are per rank, see docs). Global batch 16, 4 steps per epoch of 64 images, 2 epochs.
    private static TrainConfig Config(string output, bool zero1 = false, float bucketMb = 0.01f, int epochs = 2) => TrainConfig.Parse($$"""
        {
          "model": { "architecture": "vit", "img_size": 16, "patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2, "mlp_dim": 32 },
          "data": { "crop_padding": 2, "horizontal_flip": true, "workers": 1, "prefetch": 1 },
          "optimizer": { "name": "adamw", "lr": 0.003 },
          "schedule": { "warmup_steps": 2 },
          "batch_size": 16, "epochs": {{epochs}}, "label_smoothing": 0.1, "clip_grad_norm": 0.5,
          "distributed": { "zero1": {{(zero1 ? "true" : "false")}}, "bucket_mb": {{bucketMb.ToString(System.Globalization.CultureInfo.InvariantCulture)}} },
          "log_every_steps": 1, "seed": 3
        }
        """, [$"output={System.Text.Json.JsonSerializer.Serialize(output)}"]);

    private static readonly Synthetic Train = new(64), Val = new(8, seed: 2);

    private static TrainResult RunOne(TrainConfig cfg, long interruptAfter = 0)
    {
        using var t = new Trainer(cfg, Train, Val) { InterruptAfterStep = interruptAfter };
        return t.Run();
    }

    private static TrainResult[] RunWorld(int n, Func<int, TrainConfig> cfg, long interruptAfter = 0, List<TrainEvent>[]? events = null)
    {
        using var group = new InProcessGroup(n);
        return group.RunRanks((rank, comm) =>
        {
            using var t = new Trainer(cfg(rank), Train, Val, communicator: comm) { InterruptAfterStep = interruptAfter };
            if (events is not null) t.OnEvent = e => { lock (events) events[rank].Add(e); };
            return t.Run();
        });
    }

    private static Dictionary<string, HostArray> Checkpoint(string dir) => SafeTensors.Read(Path.Combine(dir, Trainer.CheckpointFile));

    /// <summary>max |a − b| over every tensor (weights and optimizer moments), relative to the largest |a| of each kind.</summary>
    internal static (double Weights, double Moments) MaxRelDiff(Dictionary<string, HostArray> a, Dictionary<string, HostArray> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        double dw = 0, dm = 0, sw = 0, sm = 0;
        foreach (var (k, va) in a)
        {
            var vb = b[k];
            bool moment = k.StartsWith("optim.", StringComparison.Ordinal);
            for (int i = 0; i < va.Data.Length; i++)
            {
                double d = Math.Abs(va.Data[i] - vb.Data[i]), s = Math.Abs(va.Data[i]);
                if (moment) { dm = Math.Max(dm, d); sm = Math.Max(sm, s); }
                else { dw = Math.Max(dw, d); sw = Math.Max(sw, s); }
            }
        }
        return (dw / sw, dm / Math.Max(sm, 1e-30));
    }

    [Fact]
    public void ShardsAreDisjointCoverTheEpochAndMatchTheGlobalBatch()
    {
        var cfg = Config(TempDir());
        var aug = TrainData.Augmentation(cfg.Data, 16, 3);
        var data = new Synthetic(70); // 70 = 4 global batches of 16 + 6 left over (dropped, as one rank drops them)
        var global = TrainData.Loader(cfg.Data, data, 16, aug, training: true, seed: 3);
        foreach (int n in new[] { 2, 4 })
        {
            var ranks = Enumerable.Range(0, n).Select(r => TrainData.Loader(cfg.Data, data, 16 / n, aug, training: true, seed: 3, r, n)).ToArray();
            Assert.All(ranks, l => Assert.Equal(global.BatchesPerEpoch, l.BatchesPerEpoch));
            for (int epoch = 0; epoch < 2; epoch++)
            {
                var seen = new List<int>();
                var globalBatches = global.Epoch(epoch).ToList();
                var rankBatches = ranks.Select(l => l.Epoch(epoch).ToList()).ToArray();
                for (int bi = 0; bi < global.BatchesPerEpoch; bi++)
                {
                    var fromRanks = Enumerable.Range(0, n).SelectMany(r => ranks[r].SampleIndices(epoch, bi)).ToArray();
                    Assert.Equal(global.SampleIndices(epoch, bi), fromRanks);
                    seen.AddRange(fromRanks);
                    // The same pixels, augmentation included, and the same labels as the one-rank batch.
                    var images = rankBatches.SelectMany(b => b[bi].Images).ToArray();
                    Assert.True(globalBatches[bi].Images.AsSpan().SequenceEqual(images), $"N={n} epoch {epoch} batch {bi}: pixels differ");
                    Assert.Equal(globalBatches[bi].Labels, rankBatches.SelectMany(b => b[bi].Labels).ToArray());
                }
                Assert.Equal(64, seen.Count);
                Assert.Equal(64, seen.Distinct().Count()); // disjoint: every sample at most once per epoch
                Assert.All(seen, i => Assert.InRange(i, 0, 69));
            }
            // Another epoch, another order (seeded by epoch).
            Assert.NotEqual(ranks[0].SampleIndices(0, 0), ranks[0].SampleIndices(1, 0));
        }
    }

    [Fact]
    public void InProcessAllReduceSumsInRankOrder()
    {
        using var group = new InProcessGroup(3);
        var be = VitSharp.Backends.Cpu.CpuBackend.Instance;
        var got = group.RunRanks((rank, comm) =>
        {
            using var t = VitSharp.Tensors.Tensor.FromArray([rank + 1f, 0.1f * rank, 1e8f * (rank == 0 ? 1 : 0) + 1f], 3);
            comm.AllReduce(be, t, ReduceOp.Sum);
            var sum = t.ToArray();
            comm.AllReduce(be, t, ReduceOp.Average);
            using var b = VitSharp.Tensors.Tensor.FromArray([rank, rank], 2);
            comm.Broadcast(be, b, 2);
            comm.Barrier();
            return (sum, avg: t.ToArray(), bc: b.ToArray());
        });
        // (1e8 + 1) + 1 + 1 in fp32 from rank 0 on: 1e8 (the ones are lost one by one), the same on every rank.
        float third = 1e8f + 1f; third += 1f; third += 1f;
        float tenth = 0f + 0.1f; tenth += 0.2f;
        foreach (var (sum, avg, bc) in got)
        {
            Assert.Equal([6f, tenth, third], sum);
            Assert.Equal([Avg3(6f), Avg3(tenth), Avg3(third)], avg);
            Assert.Equal([2f, 2f], bc);
        }
    }

    private static float Avg3(float s) { float r = s; r += s; r += s; return r * (1f / 3); }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void NRanksTimesBMatchOneRankTimesNB(int n)
    {
        var one = TempDir();
        var single = RunOne(Config(one));
        var many = TempDir();
        var results = RunWorld(n, _ => Config(many));
        Assert.Equal(8, single.Steps);
        Assert.All(results, r => Assert.Equal(8, r.Steps));
        // The logged loss (the global batch's mean) agrees step by step, on every rank.
        foreach (var r in results)
            for (int i = 0; i < 8; i++)
                Assert.True(Math.Abs(single.StepLosses[i] - r.StepLosses[i]) <= 1e-5 * Math.Abs(single.StepLosses[i]),
                    $"N={n} step {i + 1}: loss {r.StepLosses[i]:R} vs {single.StepLosses[i]:R}");
        var (w, m) = MaxRelDiff(Checkpoint(one), Checkpoint(many));
        Assert.True(w <= Tolerance, $"N={n}: weights differ by {w:E2} of their largest magnitude (tolerance {Tolerance:E0})");
        Assert.True(w > 0 || n == 1, "expected the fp32 sum order to show somewhere; the comparison may be vacuous");
        Assert.True(m <= Tolerance, $"N={n}: Adam moments differ by {m:E2}");
        // Only rank 0 evaluated.
        Assert.NotNull(results[0].LastEval);
        Assert.All(results.Skip(1), r => Assert.Null(r.LastEval));
    }

    [Fact]
    public void Zero1EqualsPlainDataParallel()
    {
        var plain = TempDir();
        RunWorld(2, _ => Config(plain));
        var zero = TempDir();
        RunWorld(2, _ => Config(zero, zero1: true));
        // AdamW is elementwise: sharding its state changes no number.
        var a = Checkpoint(plain);
        var b = Checkpoint(zero);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, v) in a) Assert.True(v.Data.AsSpan().SequenceEqual(b[k].Data), $"{k} differs between ZeRO-1 and plain data parallelism");
    }

    [Fact]
    public void Zero1ShardsCoverTheBufferOnAlignedBoundaries()
    {
        var s = Zero1AdamW.Shards(1000, 3);
        Assert.Equal([(0L, 336L), (336L, 672L), (672L, 1000L)], s);
        Assert.Equal([(0L, 16L), (16L, 17L), (17L, 17L)], Zero1AdamW.Shards(17, 3)); // an empty shard is allowed
    }

    [Fact]
    public void BucketsCoverTheGradientsFromTheEnd()
    {
        Assert.Equal([(60L, 40), (20L, 40), (0L, 20)], Trainer.GradientBuckets(100, 40));
        Assert.Equal([(0L, 100)], Trainer.GradientBuckets(100, 1 << 20));
    }

    [Theory]
    [InlineData(2, 2, false)]
    [InlineData(2, 2, true)]
    [InlineData(2, 1, false)]
    [InlineData(1, 2, false)]
    [InlineData(2, 4, true)]
    public void ResumesOnAnotherWorldSize(int before, int after, bool zero1)
    {
        // Straight: the whole run on `after` ranks. Resumed: 3 steps on `before` ranks (checkpoint every step), the rest
        // on `after`; both equal the one-rank run within the tolerance, so they equal each other within twice it.
        TrainConfig Cfg(string dir) => Config(dir, zero1) with { CheckpointEverySteps = 1 };
        TrainResult[] Run(int n, string dir, long stop) => n == 1 ? [RunOne(Cfg(dir), stop)] : RunWorld(n, _ => Cfg(dir), stop);
        var straight = TempDir();
        Run(after, straight, 0);
        var resumed = TempDir();
        var first = Run(before, resumed, 3);
        Assert.All(first, r => { Assert.True(r.Interrupted); Assert.Equal(3, r.Steps); });
        var rest = Run(after, resumed, 0);
        Assert.All(rest, r => { Assert.False(r.Interrupted); Assert.Equal(8, r.Steps); Assert.Equal(5, r.StepLosses.Count); });
        var (w, m) = MaxRelDiff(Checkpoint(straight), Checkpoint(resumed));
        if (before == after) Assert.True(w == 0 && m == 0, $"{before}→{after} ranks: a resume on the same world size must be bit-exact ({w:E2}, {m:E2})");
        Assert.True(w <= 2 * Tolerance, $"{before}→{after} ranks: weights differ by {w:E2}");
        Assert.True(m <= 2 * Tolerance, $"{before}→{after} ranks: moments differ by {m:E2}");
        // The log reads as one run of 8 steps.
        Assert.Equal(8, File.ReadAllLines(Path.Combine(resumed, Trainer.LogFile)).Count(l => l.Contains("\"kind\":\"step\"")));
    }

    [Fact]
    public void RankZeroAloneWritesAndLogs()
    {
        // Each rank gets its own output folder (the only key that may differ): only rank 0's has anything in it.
        var dirs = Enumerable.Range(0, 3).Select(_ => TempDir()).ToArray();
        var events = Enumerable.Range(0, 3).Select(_ => new List<TrainEvent>()).ToArray();
        using var group = new InProcessGroup(3);
        Assert.Throws<VitSharpException>(() => group.RunRanks((rank, comm) =>
        {
            using var t = new Trainer(Config(dirs[rank]), Train, Val, communicator: comm);
            return 0;
        })); // 16 does not divide by 3
        var results = RunWorld(2, r => Config(dirs[r]), events: events);
        Assert.True(File.Exists(Path.Combine(dirs[0], Trainer.CheckpointFile)));
        Assert.True(File.Exists(Path.Combine(dirs[0], Trainer.ModelFile)));
        Assert.Equal(8, File.ReadAllLines(Path.Combine(dirs[0], Trainer.LogFile)).Count(l => l.Contains("\"kind\":\"step\"")));
        Assert.Empty(Directory.GetFileSystemEntries(dirs[1]));
        Assert.Contains(events[0], e => e.Kind == "checkpoint");
        Assert.Empty(events[1]);
        Assert.Equal(results[0].StepLosses, results[1].StepLosses); // every rank logs the same global loss
    }

    [Fact]
    public void WorldOfOneInProcessIsBitIdenticalToNoCommunicator()
    {
        var plain = TempDir();
        var a = RunOne(Config(plain));
        var group = TempDir();
        var b = RunWorld(1, _ => Config(group))[0];
        Assert.Equal(a.StepLosses, b.StepLosses);
        foreach (var (k, v) in Checkpoint(plain)) Assert.True(v.Data.AsSpan().SequenceEqual(Checkpoint(group)[k].Data), $"{k} differs");
    }
    /// <summary>The trainer over the TCP communicator (2 ranks on threads over localhost; in production separate
    /// processes, see MultiProcessTrainingTests) writes the in-process group's checkpoint bit for bit, ZeRO-1 included
    /// (its broadcasts come from every rank).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void OverTcpIsBitIdenticalToInProcess(bool zero1)
    {
        var local = TempDir();
        var a = RunWorld(2, _ => Config(local, zero1));
        var tcp = TempDir();
        int port = LocalLaunch.FreePort();
        var results = new TrainResult[2];
        var errors = new Exception?[2];
        var threads = Enumerable.Range(0, 2).Select(r => new Thread(() =>
        {
            try
            {
                using var comm = TcpCommunicator.Create(r, 2, "127.0.0.1", port, TimeSpan.FromSeconds(30));
                using var t = new Trainer(Config(tcp, zero1), Train, Val, communicator: comm);
                results[r] = t.Run();
            }
            catch (Exception e) { errors[r] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(120)), "a rank hung");
        Assert.All(errors, e => Assert.Null(e));
        Assert.Equal(a[0].StepLosses, results[0].StepLosses);
        Assert.Equal(a[1].StepLosses, results[1].StepLosses);
        var (x, y) = (Checkpoint(local), Checkpoint(tcp));
        Assert.Equal(x.Keys.Order(), y.Keys.Order());
        foreach (var (k, v) in x) Assert.True(v.Data.AsSpan().SequenceEqual(y[k].Data), $"{k} differs between TCP and in-process");
    }
}
