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
/// CCT's convolutional tokenizer (Nn.ConvTokenizer, conv_tokenizer in a model config): the CPU forward against a direct
/// scalar convolution + ReLU + max pool in double; the ops' backwards and a whole tiny ViT's gradients against central
/// finite differences; a CPU training run, save, reload, evaluate and fine-tune at twice the resolution; config errors.
/// </summary>
public class ConvTokenizerTests(ITestOutputHelper output)
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    /// <summary>The tokenizer written out directly: for each layer, 7 loops of conv 3×3 (pad 1, no bias), ReLU, then
    /// max pool 3×3 stride 2 pad 1 (padding never picked), all in double on NCHW maps; tokens (B, H·W, C) row-major.</summary>
    private static double[] Reference(float[] images, int b, int c, int h, int w, IReadOnlyList<(float[] W, int Cout)> layers)
    {
        var x = images.Select(v => (double)v).ToArray();
        int cin = c;
        foreach (var (wt, cout) in layers)
        {
            var conv = new double[b * cout * h * w];
            for (int n = 0; n < b; n++)
                for (int o = 0; o < cout; o++)
                    for (int y = 0; y < h; y++)
                        for (int xx = 0; xx < w; xx++)
                        {
                            double s = 0;
                            for (int i = 0; i < cin; i++)
                                for (int kh = 0; kh < 3; kh++)
                                    for (int kw = 0; kw < 3; kw++)
                                    {
                                        int iy = y + kh - 1, ix = xx + kw - 1;
                                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                        s += wt[((o * cin + i) * 3 + kh) * 3 + kw] * x[((n * cin + i) * h + iy) * w + ix];
                                    }
                            conv[((n * cout + o) * h + y) * w + xx] = Math.Max(0, s);
                        }
            int ho = (h + 2 - 3) / 2 + 1, wo = (w + 2 - 3) / 2 + 1;
            var pooled = new double[b * cout * ho * wo];
            for (int n = 0; n < b; n++)
                for (int o = 0; o < cout; o++)
                    for (int y = 0; y < ho; y++)
                        for (int xx = 0; xx < wo; xx++)
                        {
                            double m = double.NegativeInfinity;
                            for (int kh = 0; kh < 3; kh++)
                                for (int kw = 0; kw < 3; kw++)
                                {
                                    int iy = 2 * y + kh - 1, ix = 2 * xx + kw - 1;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < w) m = Math.Max(m, conv[((n * cout + o) * h + iy) * w + ix]);
                                }
                            pooled[((n * cout + o) * ho + y) * wo + xx] = m;
                        }
            (x, cin, h, w) = (pooled, cout, ho, wo);
        }
        // NCHW → tokens (B, H·W, C).
        var tokens = new double[x.Length];
        for (int n = 0; n < b; n++)
            for (int o = 0; o < cin; o++)
                for (int p = 0; p < h * w; p++) tokens[(n * h * w + p) * cin + o] = x[(n * cin + o) * h * w + p];
        return tokens;
    }

    [Theory]
    [InlineData(1, 16)]
    [InlineData(2, 16)]
    [InlineData(1, 32)]
    [InlineData(2, 32)]
    public void ForwardMatchesADirectConvolution(int layers, int size)
    {
        var ct = new ConvTokenizerConfig { Layers = layers, Channels = 8 };
        int b = 2, c = 3, dim = 12;
        var rng = new Random(layers * 100 + size);
        using var ps = new ParameterSet(Cpu, ConvTokenizer.Layout(ct, c, dim));
        var weights = new List<(float[] W, int Cout)>();
        foreach (var (name, shape) in ConvTokenizer.Layout(ct, c, dim))
        {
            var a = TestData.Uniform(rng, Shape.Count(shape), 0.5);
            Cpu.CopyFromHost(a, ps[name]);
            weights.Add((a, shape[0]));
        }
        var img = TestData.Uniform(rng, b * c * size * size);
        using var images = Tensor.FromArray(img, b, c, size, size);
        var want = Reference(img, b, c, size, size, weights);
        int side = size >> layers;

        var tok = ConvTokenizer.From(ps, layers);
        using var ws = new Workspace(Cpu);
        var got = tok.Forward(Pass.Inference(Cpu, ws), images);
        Assert.Equal([b, side * side, dim], got.Shape);
        var inference = got.ToArray();
        // A training pass (unfold, product, separate ReLU) computes the same tokens.
        using var grads = new ParameterSet(Cpu, ConvTokenizer.Layout(ct, c, dim), DType.F32);
        using var ws2 = new Workspace(Cpu);
        var training = tok.Forward(Pass.Train(Cpu, ws2, ps, grads, null), images).ToArray();
        double worst = 0, scale = want.Max(Math.Abs);
        for (int i = 0; i < want.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(inference[i] - want[i]));
            worst = Math.Max(worst, Math.Abs(training[i] - want[i]));
        }
        Assert.True(scale > 0.1, "the reference is not all zeros");
        Assert.True(worst <= 1e-5 * Math.Max(1, scale), $"max |Δ| {worst:E2} (values up to {scale:F3})");
        // The host defaults (what a backend without kernels of its own runs) give the same numbers.
        using var cols = Tensor.Host(b, size * size, c * 9);
        using var hostCols = Tensor.Host(b, size * size, c * 9);
        Cpu.Im2Col3x3(images, cols, size, size, true);
        HostOps.Im2Col3x3(Cpu, images, hostCols, size, size, true);
        Assert.Equal(hostCols.ToArray(), cols.ToArray());
    }

    private static double Dot(Tensor y, Tensor r) => FiniteDifferenceTests.Dot(y, r);

    /// <summary>Every input element of the unfold's and the pool's backward, CPU and host default, against central finite
    /// differences of their own forwards (loss Σ y ⊙ R).</summary>
    [Fact]
    public void OpBackwardsMatchFiniteDifferences()
    {
        var rng = new Random(7);
        int b = 2, h = 6, w = 5, c = 3;
        foreach (ITrainingBackend be in new ITrainingBackend[] { Cpu, new HostDefaultsBackend() })
        {
            // Unfold of a channels-last map (linear: exact up to rounding).
            using var x = FiniteDifferenceTests.Rand(rng, b, h * w, c);
            using var cols = Tensor.Host(b, h * w, c * 9);
            using var r = FiniteDifferenceTests.Rand(rng, cols.Shape);
            double UnfoldLoss() { be.Im2Col3x3(x, cols, h, w, false); return Dot(cols, r); }
            using var dx = Tensor.Host(x.Shape);
            be.Im2Col3x3Backward(r, dx, h, w);
            Check("im2col", x, dx, UnfoldLoss);

            // Max pool: distinct values at least 0.05 apart, so a step of 1e-2 never changes a window's maximum.
            var distinct = Enumerable.Range(0, b * h * w * c).Select(i => (float)(i * 0.05)).OrderBy(_ => rng.Next()).ToArray();
            using var px = Tensor.FromArray(distinct, b, h * w, c);
            using var pooled = Tensor.Host(b, HostOps.PooledSize(h) * HostOps.PooledSize(w), c);
            using var rp = FiniteDifferenceTests.Rand(rng, pooled.Shape);
            double PoolLoss() { be.MaxPool3x3s2(px, pooled, h, w); return Dot(pooled, rp); }
            using var dpx = Tensor.Host(px.Shape);
            be.MaxPool3x3s2Backward(rp, px, dpx, h, w);
            Check("maxpool", px, dpx, PoolLoss);
            Assert.Contains(dpx.ToArray(), v => v != 0);
        }
    }

    private static void Check(string what, Tensor wrt, Tensor analytic, Func<double> loss) =>
        FiniteDifferenceTests.Check(what, wrt, analytic.ToArray(), loss, samples: int.MaxValue);

    internal static VitConfig Tiny(int layers = 2, int size = 16) => new()
    {
        ImageSize = size, PatchSize = 1 << layers, EmbedDim = 16, Depth = 1, NumHeads = 2, MlpDim = 32, NumClasses = 4,
        ConvTokenizer = new ConvTokenizerConfig { Layers = layers, Channels = 6 },
    };

    /// <summary>
    /// A whole ViT with a two-layer tokenizer: EVERY element of both convolution weights (the first layer's gradient
    /// reaches it through the second layer's unfold and pool backwards: the input path), and the largest, first,
    /// middle and last entry of every other parameter, against central differences of the inference forward
    /// (cross-entropy in double on the host, fp32 forwards). Step h = 1e-2 as the family gradient tests use, bound
    /// |numeric − analytic| ≤ 2e-3 + 2e-2·|numeric|: ReLU and max-pool kinks a step crosses perturb the numeric side a
    /// little; a wrong or missing term fails by far more.
    /// </summary>
    [Fact]
    public void WholeModelGradientsMatchFiniteDifferences()
    {
        var cfg = Tiny();
        using var model = VisionModel.Create(cfg, Cpu);
        var init = Initializer.Init(cfg, 3);
        var rng = new Random(5);
        // A state like a trained model's: a head with an opinion, and class token and positions of order one (at timm's
        // init the class token's row has a variance of ~1e-4, so its LayerNorm scales by ~100 and central differences
        // of any step see mostly curvature).
        foreach (var name in new[] { "head.weight", "cls_token", "pos_embed" })
            foreach (ref var v in init[name].Data.AsSpan()) v = (float)(rng.NextDouble() - 0.5);
        model.Load(init, "init");
        var input = new HostArray([2, 3, 16, 16], TestData.Uniform(rng, 2 * 3 * 16 * 16));
        int[] labels = [1, 3];

        var grads = WholeModelGradients.Analytic(model, input, labels);
        Assert.DoesNotContain(grads.Keys, k => k.StartsWith("patch_embed", StringComparison.Ordinal));

        WholeModelGradients.AssertWithinBound(model, grads, input, labels, name => name.StartsWith("tokenizer.", StringComparison.Ordinal), output);
        foreach (var name in new[] { ConvTokenizer.WeightName(0), ConvTokenizer.WeightName(1) })
            Assert.True(grads[name].Data.Count(v => v != 0) > grads[name].Data.Length / 2, $"{name} has real gradients");
    }

    /// <summary>Training on the CPU lowers the loss; the saved model's metadata carries conv_tokenizer; reloading it
    /// (by metadata, and from its weights alone) evaluates to the same predictions; fine-tuning at 2× resolution
    /// resamples the position embedding (8×8 → 16×16 tokens) and trains.</summary>
    [Fact]
    public void TrainSaveReloadAndFineTuneAtTwiceTheResolution()
    {
        var dir = Directory.CreateTempSubdirectory("vitsharp-cct-").FullName;
        try
        {
            string Q(string s) => JsonSerializer.Serialize(s);
            var cfg = TrainConfig.Parse("""
                {
                  "model": { "architecture": "vit", "img_size": 32, "patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64,
                             "global_pool": "avg", "conv_tokenizer": { "layers": 2, "channels": 8 } },
                  "optimizer": { "name": "adamw", "lr": 0.003 }, "schedule": { "warmup_steps": 5 },
                  "batch_size": 32, "epochs": 4, "seed": 1, "log_every_steps": 100, "label_smoothing": 0
                }
                """, [$"output={Q(dir)}"]);
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
            Assert.Equal(new ConvTokenizerConfig { Layers = 2, Channels = 8 }, v.ConvTokenizer);
            Assert.Equal([8, 3, 3, 3], ck.Weights[ConvTokenizer.WeightName(0)].Shape);
            Assert.Equal([32, 8, 3, 3], ck.Weights[ConvTokenizer.WeightName(1)].Shape);
            Assert.DoesNotContain(ck.Weights.Keys, k => k.StartsWith("patch_embed", StringComparison.Ordinal));
            var (_, meta, _) = SafeTensors.ReadHeader(file);
            var record = System.Text.Json.Nodes.JsonNode.Parse(meta[ModelMetadata.MetadataKey])!;
            Assert.Equal("""{"layers":2,"channels":8}""", record["config"]!["conv_tokenizer"]!.ToJsonString());

            // Predictions: the trainer's model file, loaded twice (its metadata; its weights alone), on the same images.
            var rng = new Random(9);
            var images = new HostArray([6, 3, 32, 32], TestData.Uniform(rng, 6 * 3 * 32 * 32, 2));
            using var a = ck.CreateModel(Cpu);
            var inferred = ConfigInference.Infer(ck.Weights, file, null, heads: 2);
            Assert.Equal(v with { NumClasses = 4 }, ((VitConfig)inferred) with { LayerNormEps = v.LayerNormEps, Gelu = v.Gelu, Pool = v.Pool, FcNorm = v.FcNorm });
            using var b = VisionModel.Create(inferred, Cpu);
            b.Load(ck.Weights, file);
            var la = a.Run(images);
            var lb = b.Run(images);
            Assert.Equal(la.Data, lb.Data);
            Assert.True(la.Data.Select(Math.Abs).Max() > 1e-2f, "trained logits are not ~0");

            // Fine-tune at 64×64: 16×16 tokens instead of 8×8, position embedding resampled, the head kept.
            var (ftConfig, ftWeights) = FineTune.Prepare(file, 64, 4);
            Assert.Equal(64, ftConfig.ImageSize);
            Assert.Equal([1, 16 * 16 + 1, 32], ftWeights["pos_embed"].Shape);
            var ft = Path.Combine(dir, "ft");
            var ftCfg = TrainConfig.Parse("""
                { "optimizer": { "name": "adamw", "lr": 0.0005 }, "batch_size": 32, "epochs": 1, "log_every_steps": 100 }
                """, [$"output={Q(ft)}", $"init_checkpoint={Q(file)}", "model.img_size=64"]);
            using (var t = new Trainer(ftCfg, new Resized(train, 64), new Resized(val, 64)))
            {
                Assert.Equal(64, t.Model.Config.ImageSize);
                var fr = t.Run();
                output.WriteLine($"fine-tuned at 64×64: top-1 {fr.LastEval!.Top1:P1}");
            }
            var saved = Checkpoint.Load(Path.Combine(ft, Trainer.ModelFile));
            Assert.Equal(64, saved.Config.ImageSize);
            Assert.Equal(v.ConvTokenizer, ((VitConfig)saved.Config).ConvTokenizer);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>Another dataset's images upsampled (nearest) to <paramref name="size"/>.</summary>
    private sealed class Resized(VitSharp.Data.Datasets.IImageDataset inner, int size) : VitSharp.Data.Datasets.IImageDataset
    {
        public int Count => inner.Count;
        public IReadOnlyList<string> Classes => inner.Classes;
        public int Label(int index) => inner.Label(index);
        public VitSharp.Data.Image Load(int index)
        {
            var im = inner.Load(index);
            var px = new byte[size * size * im.Channels];
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    for (int c = 0; c < im.Channels; c++)
                        px[(y * size + x) * im.Channels + c] = im.Pixels![((y * im.Height / size) * im.Width + x * im.Width / size) * im.Channels + c];
            return new VitSharp.Data.Image(size, size, im.Channels, px);
        }
    }

    [Theory]
    [InlineData("""{ "layers": 2, "channels": 64 }""", 8, "patch_size must be 4 (2^layers, the tokenizer's total stride), not 8")]
    [InlineData("""{ "layers": 2, "channels": 64, "kernel": 3 }""", 4, "unknown key 'model.conv_tokenizer.kernel'")]
    [InlineData("""{ "layers": 0, "channels": 64 }""", 1, "conv_tokenizer: layers must be 1 to 6, not 0")]
    [InlineData("""{ "layers": 2, "channels": 0 }""", 4, "conv_tokenizer: channels must be positive, not 0")]
    [InlineData("""[2, 64]""", 4, "'model.conv_tokenizer' must be an object")]
    public void ConfigErrorsAreOneLine(string tokenizer, int patch, string expected)
    {
        var json = $$"""{ "model": { "architecture": "vit", "img_size": 32, "patch_size": {{patch}}, "embed_dim": 32, "depth": 1, "num_heads": 2, "conv_tokenizer": {{tokenizer}} } }""";
        var e = Assert.ThrowsAny<VitSharpException>(() => TrainConfig.Parse(json, null, "run.json"));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith("run.json", e.Message);
    }

    [Fact]
    public void ImageSizeMustBeAMultipleOfTheStrideAndMetadataRoundTrips()
    {
        var e = Assert.ThrowsAny<VitSharpException>(() => (Tiny() with { ImageSize = 18 }).Validate());
        Assert.Contains("image size 18 is not a positive multiple of patch size 4", e.Message);
        var cfg = Tiny();
        var json = cfg.ToJson();
        Assert.Equal("""{"layers":2,"channels":6}""", json["conv_tokenizer"]!.ToJsonString());
        Assert.Null(new VitConfig().ToJson()["conv_tokenizer"]); // a patch-projection model's metadata is unchanged
        var path = Path.Combine(Path.GetTempPath(), $"vitsharp-cct-{Environment.ProcessId}.safetensors");
        try
        {
            Checkpoint.Save(path, cfg, Initializer.Init(cfg, 1));
            Assert.Equal(cfg, Checkpoint.Load(path).Config);
            Assert.Equal(2.0 * 16 * 16 * 6 * 3 * 9 + 2.0 * 8 * 8 * 16 * 6 * 9,
                ModelCost.ForwardFlops(cfg) - ModelCost.ForwardFlops(cfg with { ConvTokenizer = null, PatchSize = 4 })
                + 2.0 * 16 * 16 * 3 * 4 * 4);
        }
        finally { File.Delete(path); }
    }

    /// <summary>The shipped CCT recipes parse: the CCT-7/3x2 shape (two tokenizer layers of 64 channels, 64 tokens, width
    /// 256, depth 7, 4 heads, MLP 512, average pooling without a class token) and its 64² fine-tuning step.</summary>
    [Fact]
    public void ShippedCctConfigsParse()
    {
        var gpu = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_cct_gpu.json"));
        var lite = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_vit_lite_gpu.json"));
        var v = Assert.IsType<VitConfig>(gpu.BuildModelConfig(10));
        Assert.Equal(new ConvTokenizerConfig { Layers = 2, Channels = 64 }, v.ConvTokenizer);
        Assert.Equal((32, 4, 64, 256, 7, 4, 512), (v.ImageSize, v.PatchSize, v.NumPatches, v.EmbedDim, v.Depth, v.NumHeads, v.MlpDim));
        Assert.Equal((Pooling.Avg, true, false), (v.Pool, v.FcNorm, v.ClassToken));
        // Only the model differs from the ViT-Lite recipe.
        Assert.Equal((lite with { Model = gpu.Model, Output = gpu.Output }).ToJson(), gpu.ToJson());
        Assert.Equal([256, 64, 3, 3], VisionTransformer.Layout(v).Single(l => l.Item1 == ConvTokenizer.WeightName(1)).Item2);
        var ft = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_cct_ft64.json"));
        var liteFt = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_vit_lite_ft64.json"));
        Assert.Equal((liteFt with { Output = ft.Output }).ToJson(), ft.ToJson());
    }

    /// <summary>The tokenizer's weights start as CCT's kaiming_normal_: zero mean, std √(2/fan_in).</summary>
    [Fact]
    public void ConvWeightsStartKaimingNormal()
    {
        var cfg = Tiny() with { EmbedDim = 64, ConvTokenizer = new ConvTokenizerConfig { Layers = 2, Channels = 64 } };
        var w = Initializer.Init(cfg, 2)[ConvTokenizer.WeightName(1)].Data;
        double mean = w.Average(x => (double)x), std = Math.Sqrt(w.Average(x => (x - mean) * (x - mean)));
        Assert.InRange(std, 0.95 * Math.Sqrt(2.0 / (64 * 9)), 1.05 * Math.Sqrt(2.0 / (64 * 9)));
        Assert.InRange(Math.Abs(mean), 0, 0.005);
        Assert.True(w.Max(Math.Abs) > 2.5 * std, "not truncated at 2σ as the trunc_normal weights are");
    }
}
