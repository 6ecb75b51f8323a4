using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>
/// Each backward kernel against central finite differences of its own forward, on small random shapes. The scalar loss
/// is Σ y ⊙ R for a fixed random R (so dL/dy = R). Forward passes run in fp32, so a step h = 1e-2 and a tolerance of
/// 1e-3 + 1e-2·|g| leave room for rounding while a wrong formula (a missing term, a transposed index) fails by far more.
/// </summary>
public class FiniteDifferenceTests
{
    private static readonly CpuBackend Be = CpuBackend.Instance;

    internal static Tensor Rand(Random rng, params int[] shape)
    {
        var t = Tensor.Host(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() * 2 - 1);
        return t;
    }

    internal static double Dot(Tensor y, Tensor r)
    {
        double s = 0;
        var a = y.Span; var b = r.Span;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    /// <summary>Perturbs up to <paramref name="samples"/> entries of <paramref name="wrt"/> (evenly spaced; every entry
    /// with int.MaxValue) and compares (L(+h) − L(−h)) / 2h with the analytic gradient.</summary>
    internal static void Check(string what, Tensor wrt, float[] analytic, Func<double> loss, float h = 1e-2f, double rel = 1e-2, double abs = 1e-3,
        int samples = 40)
    {
        var s = wrt.Span;
        int stride = Math.Max(1, s.Length / samples);
        for (int i = 0; i < s.Length; i += stride)
        {
            float orig = s[i];
            s[i] = orig + h; double up = loss();
            s[i] = orig - h; double down = loss();
            s[i] = orig;
            double num = (up - down) / (2 * h);
            Assert.True(Math.Abs(num - analytic[i]) <= abs + rel * Math.Abs(num),
                $"{what}[{i}]: analytic {analytic[i]:G6}, numeric {num:G6}");
        }
    }

    [Fact]
    public void LinearBackward()
    {
        var rng = new Random(1);
        using Tensor x = Rand(rng, 6, 5), w = Rand(rng, 4, 5), b = Rand(rng, 4), y = Tensor.Host(6, 4), r = Rand(rng, 6, 4);
        using Tensor dx = Tensor.Host(6, 5), dw = Tensor.Host(4, 5), db = Tensor.Host(4);
        double L() { Be.Linear(x, w, b, y); return Dot(y, r); }
        Be.LinearBackward(r, x, w, dx, dw, db);
        Check("dx", x, dx.ToArray(), L);
        Check("dW", w, dw.ToArray(), L);
        Check("db", b, db.ToArray(), L);
    }

    [Fact]
    public void LayerNormBackward()
    {
        var rng = new Random(2);
        using Tensor x = Rand(rng, 7, 16), g = Rand(rng, 16), b = Rand(rng, 16), y = Tensor.Host(7, 16), r = Rand(rng, 7, 16);
        using Tensor mean = Tensor.Host(7), rstd = Tensor.Host(7), dx = Tensor.Host(7, 16), dg = Tensor.Host(16), dbt = Tensor.Host(16);
        double L() { Be.LayerNorm(x, g, b, 1e-6f, y); return Dot(y, r); }
        Be.LayerNormTrain(x, g, b, 1e-6f, y, mean, rstd);
        Be.LayerNormBackward(r, x, g, mean, rstd, dx, dg, dbt);
        Check("dx", x, dx.ToArray(), L, h: 1e-3f);
        Check("dgamma", g, dg.ToArray(), L);
        Check("dbeta", b, dbt.ToArray(), L);
    }

    [Theory]
    [InlineData(Activation.Gelu)]
    [InlineData(Activation.GeluTanh)]
    [InlineData(Activation.Tanh)]
    public void ActivationBackward(Activation act)
    {
        var rng = new Random(3);
        using Tensor x = Rand(rng, 3, 40), y = Tensor.Host(3, 40), r = Rand(rng, 3, 40), dx = Tensor.Host(3, 40);
        Be.Scale(x, 3f); // cover the curved part of GELU, −3..3
        double L() { Be.Apply(act, x, y); return Dot(y, r); }
        Be.ActivationBackward(act, r, x, dx);
        Check("dx", x, dx.ToArray(), L, h: 1e-3f);
    }

    [Fact]
    public void AttentionBackward()
    {
        var rng = new Random(4);
        int b = 2, n = 5, heads = 2, hd = 4;
        using Tensor qkv = Rand(rng, b, n, 3 * heads * hd), y = Tensor.Host(b, n, heads * hd), r = Rand(rng, b, n, heads * hd);
        using Tensor probs = Tensor.Host(b, heads, n, n), dqkv = Tensor.Host(b, n, 3 * heads * hd);
        float scale = 1f / MathF.Sqrt(hd);
        double L() { Be.Attention(qkv, y, heads, scale); return Dot(y, r); }
        Be.Attention(qkv, y, heads, scale, probs);
        Be.AttentionBackward(r, qkv, probs, dqkv, heads, scale);
        Check("dqkv", qkv, dqkv.ToArray(), L, h: 1e-3f);
    }

    [Fact]
    public void PatchEmbedEmbedAndPoolingBackward()
    {
        var rng = new Random(5);
        int p = 4, d = 6;
        using Tensor img = Rand(rng, 2, 3, 8, 8), w = Rand(rng, d, 3, p, p), bias = Rand(rng, d), patches = Tensor.Host(2, 4, d);
        using Tensor cls = Rand(rng, 1, 1, d), pos = Rand(rng, 1, 5, d), x = Tensor.Host(2, 5, d);
        using Tensor pooledMean = Tensor.Host(2, d), pooledCls = Tensor.Host(2, d), r1 = Rand(rng, 2, d), r2 = Rand(rng, 2, d);
        double L()
        {
            Be.PatchEmbed(img, w, bias, patches, p);
            Be.Embed(patches, cls, pos, x);
            Be.MeanTokens(x, 1, pooledMean);
            Be.SelectToken(x, 0, pooledCls);
            return Dot(pooledMean, r1) + Dot(pooledCls, r2);
        }
        L();
        using Tensor dx = Tensor.Host(2, 5, d), dx2 = Tensor.Host(2, 5, d), dpatches = Tensor.Host(2, 4, d);
        using Tensor dw = Tensor.Host(d, 3, p, p), db = Tensor.Host(d), dcls = Tensor.Host(1, 1, d), dpos = Tensor.Host(1, 5, d);
        Be.MeanTokensBackward(r1, 1, dx);
        Be.SelectTokenBackward(r2, 0, dx2);
        Be.Add(dx, dx2, dx);
        Be.EmbedBackward(dx, dpatches, dcls, dpos);
        Be.PatchEmbedBackward(dpatches, img, dw, db, p);
        Check("dW", w, dw.ToArray(), L);
        Check("db", bias, db.ToArray(), L);
        Check("dcls", cls, dcls.ToArray(), L);
        Check("dpos", pos, dpos.ToArray(), L);
    }

    [Fact]
    public void SoftCrossEntropyBackward()
    {
        var rng = new Random(6);
        using Tensor logits = Rand(rng, 3, 7), dl = Tensor.Host(3, 7);
        var t = new float[21];
        Targets.Fill(t, [1, 4, 6], 7, 0.1f, 0.7f); // a mixup of two smoothed labels
        Targets.Fill(t, [2, 2, 0], 7, 0.1f, 0.3f);
        using var targets = Tensor.FromArray(t, 3, 7);
        Be.SoftmaxCrossEntropy(logits, targets, dl);
        Check("dlogits", logits, dl.ToArray(), () => Be.SoftmaxCrossEntropy(logits, targets, null), h: 1e-3f);
    }

    /// <summary>Whole models end to end, with paths the PyTorch references do not cover: avg pooling with fc_norm,
    /// pre-logits, no class token, tanh GELU, the Mixer block; dropout and drop path with masks fixed by a seed.</summary>
    public static IEnumerable<object[]> Models =>
    [
        [new VitConfig { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 2, NumHeads = 2, MlpDim = 12, NumClasses = 3, Pool = Pooling.Avg, FcNorm = true, ClassToken = false }],
        [new VitConfig { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 1, NumHeads = 2, MlpDim = 12, NumClasses = 3, RepresentationSize = 6, Gelu = Activation.GeluTanh }],
        [new MixerConfig { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 2, TokenMlpDim = 5, ChannelMlpDim = 12, NumClasses = 3 }],
    ];

    [Theory]
    [MemberData(nameof(Models))]
    public void WholeModelBackward(ModelConfig config)
    {
        using var model = VisionModel.Create(config, Be);
        var init = Initializer.Init(config, seed: 7);
        var rng = new Random(8);
        foreach (var a in init.Values) for (int i = 0; i < a.Data.Length; i++) a.Data[i] += (float)(rng.NextDouble() - 0.5) * 0.5f;
        model.Load(init, "init");
        using var tm = TrainableModel.Create(model);
        tm.Regularization = new Regularization(DropRate: 0.2f, DropPathRate: 0.3f);
        using var images = Rand(rng, 2, 3, 8, 8);
        using var targets = Tensor.FromArray(Targets.Smoothed([0, 2], 3, 0.1f), 2, 3);
        using var dl = Tensor.Host(2, 3);
        double L() => Be.SoftmaxCrossEntropy(tm.Forward(images, new Random(9)), targets, null);
        tm.ZeroGrad();
        Be.SoftmaxCrossEntropy(tm.Forward(images, new Random(9)), targets, dl);
        tm.Backward(dl);
        var grads = tm.Grads.ToHost();
        foreach (var (name, _, _) in model.Parameters.Layout)
            Check(name, model.Parameters[name], grads[name].Data, L, h: 1e-2f, rel: 2e-2, abs: 2e-4);
    }
}
