using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Nn;

/// <summary>y = act(x·Wᵀ + b), W stored (out, in). With accumulate, y += x·Wᵀ + b: a residual add for free.</summary>
public sealed class Linear(Tensor weight, Tensor? bias)
{
    public Tensor Weight { get; } = weight;
    public Tensor? Bias { get; } = bias;
    public int In => Weight.Dim(1);
    public int Out => Weight.Dim(0);

    public static Linear From(ParameterSet p, string prefix, bool bias = true) =>
        new(p[prefix + ".weight"], bias ? p[prefix + ".bias"] : null);

    public static IEnumerable<(string, int[])> Layout(string prefix, int inDim, int outDim, bool bias = true)
    {
        yield return (prefix + ".weight", [outDim, inDim]);
        if (bias) yield return (prefix + ".bias", [outDim]);
    }

    public void Forward(IBackend be, Tensor x, Tensor y, Activation act = Activation.None, bool accumulate = false) =>
        be.Linear(x, Weight, Bias, y, act, accumulate);
}

public sealed class LayerNorm(Tensor gamma, Tensor beta, float eps)
{
    public Tensor Gamma { get; } = gamma;
    public Tensor Beta { get; } = beta;
    public float Eps { get; } = eps;

    public static LayerNorm From(ParameterSet p, string prefix, float eps) => new(p[prefix + ".weight"], p[prefix + ".bias"], eps);

    public static IEnumerable<(string, int[])> Layout(string prefix, int dim) =>
        [(prefix + ".weight", [dim]), (prefix + ".bias", [dim])];

    public void Forward(IBackend be, Tensor x, Tensor y) => be.LayerNorm(x, Gamma, Beta, Eps, y);
}

/// <summary>Two Linear layers with an activation between them: fc2(act(fc1(x))).</summary>
public sealed class Mlp(Linear fc1, Linear fc2, Activation act)
{
    public Linear Fc1 { get; } = fc1;
    public Linear Fc2 { get; } = fc2;
    public Activation Act { get; } = act;

    public static Mlp From(ParameterSet p, string prefix, Activation act) =>
        new(Linear.From(p, prefix + ".fc1"), Linear.From(p, prefix + ".fc2"), act);

    public static IEnumerable<(string, int[])> Layout(string prefix, int dim, int hidden) =>
        Linear.Layout(prefix + ".fc1", dim, hidden).Concat(Linear.Layout(prefix + ".fc2", hidden, dim));

    /// <summary>y (+)= fc2(act(fc1(x))); <paramref name="hidden"/> is scratch of shape (rows, hidden).</summary>
    public void Forward(IBackend be, Tensor x, Tensor hidden, Tensor y, bool accumulate)
    {
        Fc1.Forward(be, x, hidden, Act);
        Fc2.Forward(be, hidden, y, accumulate: accumulate);
    }
}

/// <summary>Multi-head self-attention with one fused qkv projection (timm layout) and an output projection.</summary>
public sealed class Attention(Linear qkv, Linear proj, int heads)
{
    public Linear Qkv { get; } = qkv;
    public Linear Proj { get; } = proj;
    public int Heads { get; } = heads;
    public float Scale => 1f / MathF.Sqrt(Qkv.In / (float)Heads);

    public static Attention From(ParameterSet p, string prefix, int heads, bool qkvBias) =>
        new(Linear.From(p, prefix + ".qkv", qkvBias), Linear.From(p, prefix + ".proj"), heads);

    public static IEnumerable<(string, int[])> Layout(string prefix, int dim, bool qkvBias) =>
        Linear.Layout(prefix + ".qkv", dim, 3 * dim, qkvBias).Concat(Linear.Layout(prefix + ".proj", dim, dim));

    /// <summary>y += proj(attention(x)). Scratch: qkv (B, N, 3D), ctx (B, N, D).</summary>
    public void Forward(IBackend be, Tensor x, Tensor qkvScratch, Tensor ctxScratch, Tensor y, Tensor? probs = null)
    {
        Qkv.Forward(be, x, qkvScratch);
        be.Attention(qkvScratch, ctxScratch, Heads, Scale, probs);
        Proj.Forward(be, ctxScratch, y, accumulate: true);
    }
}

/// <summary>Conv2d with kernel = stride = P, as a GEMM over unfolded patches. Weight (D, C, P, P).</summary>
public sealed class PatchEmbed(Tensor weight, Tensor bias, int patch)
{
    public Tensor Weight { get; } = weight;
    public Tensor Bias { get; } = bias;
    public int Patch { get; } = patch;

    public static PatchEmbed From(ParameterSet p, string prefix, int patch) => new(p[prefix + ".weight"], p[prefix + ".bias"], patch);

    public static IEnumerable<(string, int[])> Layout(string prefix, int inChans, int dim, int patch) =>
        [(prefix + ".weight", [dim, inChans, patch, patch]), (prefix + ".bias", [dim])];

    public void Forward(IBackend be, Tensor images, Tensor y) => be.PatchEmbed(images, Weight, Bias, y, Patch);
}
