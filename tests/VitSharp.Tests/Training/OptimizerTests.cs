using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Nn;
using VitSharp.Tensors;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>SGD with momentum, decay groups, clipping and gradient accumulation, against hand-computed values.</summary>
public class OptimizerTests
{
    private static readonly CpuBackend Be = CpuBackend.Instance;

    private static (ParameterSet P, ParameterSet G) Sets(float[] p, float[] g, string name = "w", int[]? shape = null)
    {
        shape ??= [p.Length];
        var ps = new ParameterSet(Be, [(name, shape)]);
        var gs = new ParameterSet(Be, [(name, shape)]);
        p.CopyTo(ps.Buffer.Span);
        g.CopyTo(gs.Buffer.Span);
        return (ps, gs);
    }

    [Fact]
    public void SgdMomentumFollowsPyTorch()
    {
        // torch.optim.SGD(momentum=0.9, weight_decay=0.1): d = g + wd·p; buf = d (first step), then 0.9·buf + d; p −= lr·buf.
        var (p, g) = Sets([1f, -2f], [0.5f, 0.25f], shape: [1, 2]);
        using var opt = new Sgd(p, g) { Momentum = 0.9f, WeightDecay = 0.1f };
        opt.Update(0.1f);
        float d0 = 0.5f + 0.1f * 1f, d1 = 0.25f + 0.1f * -2f;
        float p0 = 1f - 0.1f * d0, p1 = -2f - 0.1f * d1;
        Assert.Equal([p0, p1], p[p.Layout[0].Name].ToArray());
        opt.Update(0.1f);
        float e0 = 0.5f + 0.1f * p0, e1 = 0.25f + 0.1f * p1;
        Assert.Equal(p0 - 0.1f * (0.9f * d0 + e0), p.Buffer.Span[0], 6);
        Assert.Equal(p1 - 0.1f * (0.9f * d1 + e1), p.Buffer.Span[1], 6);
    }

    [Fact]
    public void AdamWSkipsDecayOnBiasesNormsAndEmbeddings()
    {
        var layout = new List<(string, int[])> { ("fc.weight", [2, 2]), ("fc.bias", [2]), ("pos_embed", [1, 2, 2]) };
        using var p = new ParameterSet(Be, layout);
        using var g = new ParameterSet(Be, layout);
        p.Buffer.Span.Fill(1f); // zero gradients: only weight decay can move a parameter
        using var opt = new AdamW(p, g) { WeightDecay = 0.5f };
        opt.Update(0.1f);
        Assert.All(p["fc.weight"].ToArray(), v => Assert.Equal(1f - 0.1f * 0.5f, v));
        Assert.All(p["fc.bias"].ToArray(), v => Assert.Equal(1f, v));
        Assert.All(p["pos_embed"].ToArray(), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void ClippingScalesToTheGlobalNorm()
    {
        using var t = Tensor.FromArray([3f, 4f], 2);
        Assert.Equal(5f, GradientClipping.ClipGlobalNorm(Be, t, 1f));
        Assert.Equal(1f, MathF.Sqrt(t.Span[0] * t.Span[0] + t.Span[1] * t.Span[1]), 5);
        using var small = Tensor.FromArray([0.3f, 0.4f], 2);
        GradientClipping.ClipGlobalNorm(Be, small, 1f);
        Assert.Equal([0.3f, 0.4f], small.ToArray());
    }

    [Fact]
    public void AccumulatedMicroBatchesEqualOneBatch()
    {
        var config = new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 16, Depth = 2, NumHeads = 2, MlpDim = 32, NumClasses = 4 };
        using var model = VisionModel.Create(config, Be);
        model.Load(Initializer.Init(config, seed: 2), "init");
        using var tm = TrainableModel.Create(model);
        var rng = new Random(3);
        var images = Enumerable.Range(0, 8 * 3 * 16 * 16).Select(_ => (float)rng.NextDouble()).ToArray();
        int[] labels = [0, 1, 2, 3, 3, 2, 1, 0];
        float[] Grads(int parts)
        {
            tm.ZeroGrad();
            int per = 8 / parts, size = 3 * 16 * 16;
            for (int k = 0; k < parts; k++)
            {
                using var x = Tensor.FromArray(images[(k * per * size)..((k + 1) * per * size)], per, 3, 16, 16);
                using var t = Tensor.FromArray(Targets.Smoothed(labels.AsSpan(k * per, per), 4, 0.1f), per, 4);
                using var dl = Tensor.Host(per, 4);
                Be.SoftmaxCrossEntropy(tm.Forward(x, null), t, dl, 1f / parts);
                tm.Backward(dl);
            }
            return tm.Grads.Buffer.ToArray();
        }
        var whole = Grads(1);
        var accumulated = Grads(2);
        for (int i = 0; i < whole.Length; i++)
            Assert.True(Math.Abs(whole[i] - accumulated[i]) <= 1e-6 + 1e-4 * Math.Abs(whole[i]), $"gradient {i}: {whole[i]} vs {accumulated[i]}");
    }
}
