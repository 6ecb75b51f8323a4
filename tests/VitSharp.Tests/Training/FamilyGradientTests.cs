using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Tests.Models;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>
/// The family options train: every parameter gradient of a whole model (layer scale, qk_norm, the attention-pool head, distillation and register tokens,
/// pre-norm, pixel-normalised patches, inner width ≠ width, max pooling, QuickGELU / ReLU / SiLU) against central finite
/// differences of the model's own inference forward, on the refs-families checkpoints. Cross-entropy loss in double on
/// the host; fp32 forwards, so h = 1e-2 and a tolerance of 2e-3 + 2e-2·|g| (a wrong or missing term fails by far more).
/// </summary>
public class FamilyGradientTests
{
    /// <summary>Mean cross-entropy of the model's inference logits, in double on the host (the finite-difference loss).</summary>
    internal static double Loss(VisionModel model, HostArray input, int[] labels)
    {
        var logits = model.Run(input);
        int k = logits.Shape[1];
        double sum = 0;
        for (int b = 0; b < labels.Length; b++)
        {
            double max = double.NegativeInfinity, z = 0;
            for (int j = 0; j < k; j++) max = Math.Max(max, logits.Data[b * k + j]);
            for (int j = 0; j < k; j++) z += Math.Exp(logits.Data[b * k + j] - max);
            sum += Math.Log(z) + max - logits.Data[b * k + labels[b]];
        }
        return sum / labels.Length;
    }

    public static IEnumerable<object[]> Cases =>
    [
        ["deit_distilled", "model.safetensors", null!, null!, 2],
        ["vit_reg4", "model.safetensors", null!, null!, 2],
        ["vit_dinov2_reg", "model.safetensors", null!, null!, 2],
        ["vit_layerscale_qknorm", "model.safetensors", null!, null!, 2],
        ["vit_siglip_map", "model.safetensors", null!, "tanh", 2],
        ["vit_clip_quickgelu", "model.safetensors", null!, "quick_gelu", 2],
        ["vit_avg_nocls", "model.safetensors", "max", null!, 2],
        ["vit_no_qkv_bias_relu", "model.safetensors", null!, "silu", 2],
        ["lucid_vit", "model.pt", null!, null!, 4],
        ["lucid_simple_vit", "model.pt", null!, null!, 2],
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void GradientsMatchFiniteDifferences(string name, string file, string? pool, string? act, int heads)
    {
        var dir = FamilyParityTests.Dir(name);
        var ckpt = Checkpoint.Load(Path.Combine(dir, file), new LoadOptions
        {
            Heads = heads, ImageSize = 32, Pool = VitConfig.ParsePool(pool), Gelu = ModelConfig.ParseActivation(act),
        });
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Npy.Read(Path.Combine(dir, "input.npy"));
        int classes = ((VitConfig)ckpt.Config).NumClasses;
        int[] labels = [1, classes - 1];

        var grads = WholeModelGradients.Analytic(model, input, labels);

        var weights = model.Parameters.ToHost();
        var failures = new List<string>();
        const float h = 1e-2f;
        foreach (var (pname, g) in grads)
        {
            var w = weights[pname];
            // A few entries of every tensor: the largest gradient, and a spread of others.
            int largest = 0;
            for (int i = 1; i < g.Data.Length; i++) if (Math.Abs(g.Data[i]) > Math.Abs(g.Data[largest])) largest = i;
            foreach (int i in new[] { largest, 0, g.Data.Length / 2, g.Data.Length - 1 }.Distinct())
            {
                float saved = w.Data[i];
                w.Data[i] = saved + h;
                model.Load(weights, "perturbed");
                double up = Loss(model, input, labels);
                w.Data[i] = saved - h;
                model.Load(weights, "perturbed");
                double down = Loss(model, input, labels);
                w.Data[i] = saved;
                double numeric = (up - down) / (2 * h);
                if (Math.Abs(numeric - g.Data[i]) > 2e-3 + 2e-2 * Math.Abs(numeric))
                    failures.Add($"{pname}[{i}]: analytic {g.Data[i]:G6}, numeric {numeric:G6}");
            }
        }
        model.Load(weights, "restored");
        Assert.True(failures.Count == 0, $"{name}: " + string.Join("; ", failures));
        // The check compared real gradients: the tokens the options add have nonzero ones.
        foreach (var tok in new[] { "dist_token", "reg_token", "blocks.0.ls1.gamma", "blocks.0.attn.q_norm.weight", "attn_pool.latent", "norm_pre.weight", "patch_embed.pixel_norm.weight" })
            if (grads.TryGetValue(tok, out var tg)) Assert.Contains(tg.Data, v => v != 0);
    }
}

/// <summary>The family ops' backward against central finite differences of their own forward (loss Σ y ⊙ R), every
/// input element checked (the whole-model check above samples a few per tensor).</summary>
public class FamilyOpGradientTests
{
    private static readonly ITrainingBackend Be = CpuBackend.Instance; // the interface: the family ops' default bodies

    // The loss and inputs of FiniteDifferenceTests, the same check on the core ops.
    private static Tensor Rand(Random rng, params int[] shape) => FiniteDifferenceTests.Rand(rng, shape);

    private static double Dot(Tensor y, Tensor r) => FiniteDifferenceTests.Dot(y, r);

    private static void Check(string what, Tensor wrt, Tensor analytic, Func<double> loss) =>
        FiniteDifferenceTests.Check(what, wrt, analytic.ToArray(), loss, samples: int.MaxValue);

    [Fact]
    public void QkNormBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(3);
        int heads = 2, hd = 4;
        using var qkv = Rand(rng, 2, 3, 3 * heads * hd);
        using var qg = Rand(rng, hd); using var qb = Rand(rng, hd); using var kg = Rand(rng, hd); using var kb = Rand(rng, hd);
        using var r = Rand(rng, qkv.Shape);
        using var y = Tensor.Host(qkv.Shape);
        double Loss()
        {
            qkv.Span.CopyTo(y.Span);
            Be.QkNorm(y, heads, qg, qb, kg, kb, 1e-6f);
            return Dot(y, r);
        }
        using var dqkv = Tensor.Host(qkv.Shape);
        r.Span.CopyTo(dqkv.Span);
        using var dqg = Tensor.Host(hd); using var dqb = Tensor.Host(hd); using var dkg = Tensor.Host(hd); using var dkb = Tensor.Host(hd);
        Be.QkNormBackward(dqkv, qkv, heads, qg, kg, 1e-6f, dqg, dqb, dkg, dkb);
        Check("qkv", qkv, dqkv, Loss);
        Check("q gamma", qg, dqg, Loss);
        Check("q beta", qb, dqb, Loss);
        Check("k gamma", kg, dkg, Loss);
        Check("k beta", kb, dkb, Loss);
    }

    [Fact]
    public void EmbedTokensLayerScaleAndMaxPoolBackwardsMatchFiniteDifferences()
    {
        var rng = new Random(4);
        using var patches = Rand(rng, 2, 4, 6);
        using var cls = Rand(rng, 1, 1, 6); using var reg = Rand(rng, 1, 3, 6); using var pos = Rand(rng, 1, 8, 6);
        using var r = Rand(rng, 2, 8, 6);
        using var x = Tensor.Host(2, 8, 6);
        double EmbedLoss() { Be.EmbedTokens(patches, [cls, reg], pos, x); return Dot(x, r); }
        using var dpatches = Tensor.Host(patches.Shape);
        using var dcls = Tensor.Host(cls.Shape); using var dreg = Tensor.Host(reg.Shape); using var dpos = Tensor.Host(pos.Shape);
        Be.EmbedTokensBackward(r, dpatches, [dcls, dreg], dpos);
        Check("patches", patches, dpatches, EmbedLoss);
        Check("cls", cls, dcls, EmbedLoss);
        Check("reg", reg, dreg, EmbedLoss);
        Check("pos", pos, dpos, EmbedLoss);

        using var gamma = Rand(rng, 6);
        using var ls = Tensor.Host(2, 8, 6);
        double ScaleLoss() { Be.MulChannels(x, gamma, ls); return Dot(ls, r); }
        Be.EmbedTokens(patches, [cls, reg], pos, x);
        using var dx = Tensor.Host(x.Shape); using var dgamma = Tensor.Host(6);
        Be.MulChannelsBackward(r, x, gamma, dx, dgamma);
        Check("layer scale x", x, dx, ScaleLoss);
        Check("layer scale gamma", gamma, dgamma, ScaleLoss);

        using var pooled = Tensor.Host(2, 6);
        using var rp = Rand(rng, 2, 6);
        double MaxLoss() { Be.MaxTokens(x, 1, pooled); return Dot(pooled, rp); }
        using var dmax = Tensor.Host(x.Shape);
        Be.MaxTokensBackward(rp, x, 1, dmax);
        Check("max pool", x, dmax, MaxLoss);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void CrossAttentionBackwardMatchesFiniteDifferences(int queryBatch)
    {
        var rng = new Random(5);
        int heads = 2, width = 8;
        using var q = Rand(rng, queryBatch, 1, width);
        using var kv = Rand(rng, 2, 5, 2 * width);
        using var r = Rand(rng, 2, 1, width);
        using var y = Tensor.Host(2, 1, width);
        double Loss() { Be.CrossAttention(q, kv, y, heads, 0.5f); return Dot(y, r); }
        using var dq = Tensor.Host(q.Shape);
        using var dkv = Tensor.Host(kv.Shape);
        Be.CrossAttentionBackward(r, q, kv, dq, dkv, heads, 0.5f);
        Check("q", q, dq, Loss);
        Check("kv", kv, dkv, Loss);
    }

    /// <summary>IBackend's host defaults (what CUDA runs: a wrapper backend without overrides reaches them) compute what
    /// the CPU's in-place versions do.</summary>
    [Fact]
    public void HostDefaultsMatchTheCpuOps()
    {
        var rng = new Random(6);
        IBackend host = new VitSharp.Backends.Cuda.TimedBackend(CpuBackend.Instance, (_, op) => op());
        using var patches = Rand(rng, 2, 4, 6);
        using var cls = Rand(rng, 1, 1, 6); using var reg = Rand(rng, 1, 3, 6); using var pos = Rand(rng, 1, 8, 6);
        using var a = Tensor.Host(2, 8, 6); using var b = Tensor.Host(2, 8, 6);
        Be.EmbedTokens(patches, [cls, reg], pos, a);
        host.EmbedTokens(patches, [cls, reg], pos, b);
        Assert.Equal(a.Span.ToArray(), b.Span.ToArray());
        using var gamma = Rand(rng, 6);
        using var c = Tensor.Host(2, 8, 6); using var e = Tensor.Host(2, 8, 6);
        Be.MulChannels(a, gamma, c);
        host.MulChannels(a, gamma, e);
        Assert.Equal(c.Span.ToArray(), e.Span.ToArray());
        Be.ScaleInto(a, 0.5f, c);
        host.ScaleInto(a, 0.5f, e);
        Assert.Equal(c.Span.ToArray(), e.Span.ToArray());
        Assert.Contains(c.Span.ToArray(), v => v != 0);
    }
}
