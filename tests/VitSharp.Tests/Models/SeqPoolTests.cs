using System.Text.Json;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Nn;
using VitSharp.Tensors;
using VitSharp.Tests.Training;
using VitSharp.Training;
using Xunit.Abstractions;

namespace VitSharp.Tests.Models;

/// <summary>
/// CCT's sequence pooling (Nn.SeqPool, global_pool "seq"): the layer's forward against the formula in double; its
/// backward (g, c, every token entry) and a whole tiny ViT's gradients against central finite differences; a CPU
/// training run, save, reload by metadata and from weights alone; config errors.
/// </summary>
public class SeqPoolTests(ITestOutputHelper output)
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    /// <summary>sₙ = xₙ·g + c, w = softmax over n, pooled = Σ wₙ xₙ, in double.</summary>
    private static double[] Reference(float[] x, float[] g, float c, int b, int n, int d)
    {
        var y = new double[b * d];
        for (int i = 0; i < b; i++)
        {
            var s = new double[n];
            for (int t = 0; t < n; t++)
            {
                s[t] = c;
                for (int k = 0; k < d; k++) s[t] += (double)x[(i * n + t) * d + k] * g[k];
            }
            double m = s.Max(), z = s.Sum(v => Math.Exp(v - m));
            for (int t = 0; t < n; t++)
                for (int k = 0; k < d; k++) y[i * d + k] += Math.Exp(s[t] - m) / z * x[(i * n + t) * d + k];
        }
        return y;
    }

    private static ParameterSet Params(Random rng, int d, out float[] g, out float c)
    {
        var ps = new ParameterSet(Cpu, SeqPool.Layout(d));
        g = TestData.Uniform(rng, d, 1);
        c = 0.7f;
        Cpu.CopyFromHost(g, ps[SeqPool.Prefix + ".weight"]);
        Cpu.CopyFromHost([c], ps[SeqPool.Prefix + ".bias"]);
        return ps;
    }

    [Theory]
    [InlineData(2, 9, 8)]
    [InlineData(3, 65, 24)]
    [InlineData(1, 1, 5)]
    public void ForwardMatchesTheFormula(int b, int n, int d)
    {
        var rng = new Random(b * 100 + n);
        using var ps = Params(rng, d, out var g, out var c);
        var xs = TestData.Uniform(rng, (long)b * n * d, 1.5);
        using var x = Tensor.FromArray(xs, b, n, d);
        var want = Reference(xs, g, c, b, n, d);
        var pool = SeqPool.From(ps);
        using var ws = new Workspace(Cpu);
        var inference = pool.Forward(Pass.Inference(Cpu, ws), x).ToArray();
        using var grads = new ParameterSet(Cpu, SeqPool.Layout(d), DType.F32);
        using var ws2 = new Workspace(Cpu);
        var training = pool.Forward(Pass.Train(Cpu, ws2, ps, grads, null), x).ToArray();
        var weights = pool.Weights!.ToArray();
        for (int i = 0; i < b; i++) Assert.Equal(1.0, weights.Skip(i * n).Take(n).Sum(v => (double)v), 5);
        if (n > 1) Assert.True(weights.Max() - weights.Min() > 1e-2, "the weights are not uniform (the scores matter)");
        double worst = 0;
        for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Max(Math.Abs(inference[i] - want[i]), Math.Abs(training[i] - want[i])));
        Assert.True(worst <= 1e-5, $"max |Δ| {worst:E2}");
        Assert.True(want.Max(Math.Abs) > 0.1, "the reference is not ~0");
        // The host defaults (what a backend without kernels of its own runs) give the same numbers.
        using var scores = Tensor.FromArray(TestData.Uniform(rng, (long)b * n, 2), b, n, 1);
        using Tensor w1 = Tensor.Host(b, n), w2 = Tensor.Host(b, n), y1 = Tensor.Host(b, d), y2 = Tensor.Host(b, d);
        Cpu.SeqPool(x, scores, w1, y1);
        HostOps.SeqPool(Cpu, x, scores, w2, y2);
        AssertClose(w2.ToArray(), w1.ToArray(), 1e-6);
        AssertClose(y2.ToArray(), y1.ToArray(), 1e-5);
    }

    private static void AssertClose(float[] want, float[] got, double tol)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(want[i] - got[i]) <= tol, $"[{i}] {got[i]} vs {want[i]}");
    }

    /// <summary>The layer's backward (the op's dx and scores' gradient, then the score Linear's): every token entry, every
    /// entry of g, and c, whose gradient is exactly 0 (it cancels in the softmax), against central differences of
    /// Σ pooled ⊙ R. On the CPU kernels and on the host defaults.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BackwardMatchesFiniteDifferences(bool hostDefaults)
    {
        int b = 2, n = 7, d = 6;
        var rng = new Random(hostDefaults ? 2 : 1);
        ITrainingBackend be = hostDefaults ? new HostDefaultsBackend() : Cpu;
        using var ps = Params(rng, d, out _, out _);
        using var x = FiniteDifferenceTests.Rand(rng, b, n, d);
        using var r = FiniteDifferenceTests.Rand(rng, b, d);
        var pool = SeqPool.From(ps);
        double Loss()
        {
            using var ws = new Workspace(be);
            return FiniteDifferenceTests.Dot(pool.Forward(Pass.Inference(be, ws), x), r);
        }
        using var grads = new ParameterSet(Cpu, SeqPool.Layout(d), DType.F32);
        using var dx = Tensor.Host(b, n, d);
        using (var ws = new Workspace(be))
        {
            var p = Pass.Train(be, ws, ps, grads, null);
            pool.Forward(p, x);
            pool.Backward(p, r, dx);
        }
        var dg = grads[SeqPool.Prefix + ".weight"].ToArray();
        var dc = grads[SeqPool.Prefix + ".bias"].ToArray();
        FiniteDifferenceTests.Check("x", x, dx.ToArray(), Loss, samples: int.MaxValue);
        FiniteDifferenceTests.Check("g", ps[SeqPool.Prefix + ".weight"], dg, Loss, samples: int.MaxValue);
        FiniteDifferenceTests.Check("c", ps[SeqPool.Prefix + ".bias"], dc, Loss, samples: int.MaxValue);
        Assert.True(Math.Abs(dc[0]) < 1e-5, $"dc = {dc[0]} (c cancels in the softmax)");
        Assert.True(dg.Max(Math.Abs) > 1e-2, "g has a real gradient");
    }

    internal static VitConfig Tiny(bool classToken) => new()
    {
        ImageSize = 16, PatchSize = 4, EmbedDim = 16, Depth = 1, NumHeads = 2, MlpDim = 32, NumClasses = 4,
        ClassToken = classToken, Pool = Pooling.Seq,
    };


    /// <summary>A whole ViT with seq pooling, with and without a class token: every entry of attention_pool.weight and
    /// .bias, and the largest, first, middle and last entry of every other parameter, against central differences of
    /// the inference forward (cross-entropy in double on the host). Step and bound as ConvTokenizerTests':
    /// |numeric − analytic| ≤ 2e-3 + 2e-2·|numeric|.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WholeModelGradientsMatchFiniteDifferences(bool classToken)
    {
        var cfg = Tiny(classToken);
        using var model = VisionModel.Create(cfg, Cpu);
        var init = Initializer.Init(cfg, 3);
        var rng = new Random(5);
        // A head with an opinion, positions of order one, and a score vector that makes the weights far from uniform.
        foreach (var name in new[] { "head.weight", "pos_embed", SeqPool.Prefix + ".weight" }.Concat(classToken ? ["cls_token"] : []))
            foreach (ref var v in init[name].Data.AsSpan()) v = (float)(rng.NextDouble() - 0.5);
        model.Load(init, "init");
        var input = new HostArray([2, 3, 16, 16], TestData.Uniform(rng, 2 * 3 * 16 * 16));
        int[] labels = [1, 3];

        var grads = WholeModelGradients.Analytic(model, input, labels);
        Assert.Contains(SeqPool.Prefix + ".weight", grads.Keys);
        Assert.DoesNotContain("fc_norm.weight", grads.Keys);

        WholeModelGradients.AssertWithinBound(model, grads, input, labels, name => name.StartsWith(SeqPool.Prefix, StringComparison.Ordinal), output);
        Assert.True(grads[SeqPool.Prefix + ".weight"].Data.Max(Math.Abs) > 1e-3, "g has a real gradient");
        Assert.True(Math.Abs(grads[SeqPool.Prefix + ".bias"].Data[0]) < 1e-5, "c's gradient is 0");
        if (classToken) Assert.True(grads["cls_token"].Data.Max(Math.Abs) > 1e-5, "the class token is pooled too");
    }

    /// <summary>Training on the CPU lowers the loss; the saved metadata says global_pool "seq"; reloading by metadata and
    /// from the weights alone (inferred: attention_pool.weight and no fc_norm) give identical logits.</summary>
    [Fact]
    public void TrainSaveAndReloadByMetadataAndFromWeights()
    {
        var dir = Directory.CreateTempSubdirectory("vitsharp-seq-").FullName;
        try
        {
            string Q(string s) => JsonSerializer.Serialize(s);
            var cfg = TrainConfig.Parse("""
                {
                  "model": { "architecture": "vit", "img_size": 32, "patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64,
                             "class_token": false, "global_pool": "seq" },
                  "optimizer": { "name": "adamw", "lr": 0.003 }, "schedule": { "warmup_steps": 5 },
                  "batch_size": 32, "epochs": 4, "seed": 1, "log_every_steps": 100, "label_smoothing": 0
                }
                """, [$"output={Q(dir)}"]);
            Assert.Equal(Pooling.Seq, ((VitConfig)cfg.BuildModelConfig(4)).Pool);
            var train = new DistillationTests.Quadrants(192, 1);
            var val = new DistillationTests.Quadrants(64, 2);
            TrainResult r;
            using (var t = new Trainer(cfg, train, val)) r = t.Run();
            var losses = r.StepLosses;
            double first = losses.Take(3).Average(), last = losses.TakeLast(3).Average();
            output.WriteLine($"loss {first:F3} → {last:F3}, top-1 {r.LastEval!.Top1:P1} over {losses.Count} steps");
            Assert.True(last < 0.8 * first, $"the loss falls: {first:F3} → {last:F3}");

            var file = Path.Combine(dir, Trainer.ModelFile);
            var ck = Checkpoint.Load(file);
            var v = Assert.IsType<VitConfig>(ck.Config);
            Assert.Equal(Pooling.Seq, v.Pool);
            Assert.False(v.FcNorm);
            Assert.False(v.ClassToken);
            Assert.Equal([1, 32], ck.Weights[SeqPool.Prefix + ".weight"].Shape);
            Assert.Equal([1], ck.Weights[SeqPool.Prefix + ".bias"].Shape);
            Assert.Contains(ck.Weights[SeqPool.Prefix + ".weight"].Data, x => Math.Abs(x) > 0.05f);
            var (_, meta, _) = SafeTensors.ReadHeader(file);
            var record = System.Text.Json.Nodes.JsonNode.Parse(meta[ModelMetadata.MetadataKey])!;
            Assert.Equal("seq", (string?)record["config"]!["global_pool"]);

            var rng = new Random(9);
            var images = new HostArray([6, 3, 32, 32], TestData.Uniform(rng, 6 * 3 * 32 * 32, 2));
            using var a = ck.CreateModel(Cpu);
            var inferred = (VitConfig)ConfigInference.Infer(ck.Weights, file, null, heads: 2);
            Assert.Equal(Pooling.Seq, inferred.Pool);
            Assert.Equal(v with { NumClasses = 4 }, inferred with { LayerNormEps = v.LayerNormEps, Gelu = v.Gelu });
            using var b = VisionModel.Create(inferred, Cpu);
            b.Load(ck.Weights, file);
            var la = a.Run(images);
            var lb = b.Run(images);
            Assert.Equal(la.Data, lb.Data);
            Assert.True(la.Data.Select(Math.Abs).Max() > 1e-2f, "trained logits are not ~0");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData("\"global_pool\": \"seq\", \"fc_norm\": true", "fc_norm does not go with seq pooling")]
    [InlineData("\"global_pool\": \"sequence\"", "unknown global_pool 'sequence' (expected token, avg, max, map or seq)")]
    public void ConfigErrorsAreOneLine(string keys, string expected)
    {
        var json = $$"""{ "model": { "architecture": "vit", "img_size": 32, "patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2, "class_token": false, {{keys}} } }""";
        var e = Assert.ThrowsAny<VitSharpException>(() => TrainConfig.Parse(json, null, "run.json").BuildModelConfig(10));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>configs/cifar10_cct_seq_gpu.json is configs/cifar10_cct_gpu.json with global_pool "seq" (no fc_norm, no
    /// class token) and its own output folder: nothing else differs.</summary>
    [Fact]
    public void ShippedSeqConfigDiffersFromTheCctConfigOnlyInPooling()
    {
        var seq = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_cct_seq_gpu.json"));
        var avg = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_cct_gpu.json"));
        var v = Assert.IsType<VitConfig>(seq.BuildModelConfig(10));
        Assert.Equal((Pooling.Seq, false, false), (v.Pool, v.FcNorm, v.ClassToken));
        var a = (VitConfig)avg.BuildModelConfig(10);
        Assert.Equal(a with { Pool = Pooling.Seq, FcNorm = false }, v);
        Assert.Equal("runs/cifar10_cct_seq_gpu", seq.Output);
        Assert.Equal((avg with { Model = seq.Model, Output = seq.Output }).ToJson(), seq.ToJson());
        Assert.Equal([1, 256], VisionTransformer.Layout(v).Single(l => l.Item1 == SeqPool.Prefix + ".weight").Item2);
    }

    [Fact]
    public void InitIsTruncNormalWithAZeroBiasAndFlopsCountThePool()
    {
        var cfg = Tiny(false) with { EmbedDim = 256, NumHeads = 4, MlpDim = 64 };
        var w = Initializer.Init(cfg, 1);
        var g = w[SeqPool.Prefix + ".weight"].Data;
        Assert.Equal([1, 256], w[SeqPool.Prefix + ".weight"].Shape);
        Assert.All(g, x => Assert.InRange(x, -0.04f, 0.04f));
        double std = Math.Sqrt(g.Average(x => (double)x * x));
        Assert.InRange(std, 0.012, 0.02);
        Assert.Equal([0f], w[SeqPool.Prefix + ".bias"].Data);
        Assert.Equal(ModelCost.ForwardFlops(cfg with { Pool = Pooling.Avg, FcNorm = true }) + 4.0 * 16 * 256, ModelCost.ForwardFlops(cfg));
    }
}
