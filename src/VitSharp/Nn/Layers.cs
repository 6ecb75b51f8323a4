using VitSharp.Backends;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Nn;

// The layers of a ViT and an MLP-Mixer, each with its forward and its backward side by side (llm.c's shape), and the
// backend op each calls. A layer is bound to its parameter views at construction; a training forward stores in the
// layer what its backward reads (the "saved" fields), so a backward must come before the next training forward
// (inference and recording passes leave the saved fields alone). Which mode runs is the Pass's business (Pass.cs).
// Conventions (see ITrainingBackend): parameter gradients accumulate (+=), so micro-batches need no extra code;
// activation gradients are written (=), except where a layer is told to add into the residual stream's gradient.

/// <summary>y = act(x·Wᵀ + b), W stored (out, in). With accumulate, y += x·Wᵀ + b: a residual add for free.</summary>
public sealed class Linear(Tensor weight, Tensor? bias)
{
    public Tensor Weight { get; } = weight;
    public Tensor? Bias { get; } = bias;
    public int In => Weight.Dim(1);
    public int Out => Weight.Dim(0);

    // Saved by a training forward: the input, and the pre-activation when there is an activation.
    private Tensor? _x, _pre;
    internal Tensor? SavedInput => _x;
    private Activation _act;

    public static Linear From(ParameterSet p, string prefix, bool bias = true) =>
        new(p[prefix + ".weight"], bias ? p[prefix + ".bias"] : null);

    public static IEnumerable<(string, int[])> Layout(string prefix, int inDim, int outDim, bool bias = true)
    {
        yield return (prefix + ".weight", [outDim, inDim]);
        if (bias) yield return (prefix + ".bias", [outDim]);
    }

    /// <summary>Writes (or adds into) <paramref name="y"/>, by default a new activation (…, Out). In training the
    /// activation runs apart from the product, on a saved pre-activation; in inference it is the GEMM's epilogue.</summary>
    public Tensor Forward(Pass p, Tensor x, Tensor? y = null, Activation act = Activation.None, bool accumulate = false)
    {
        y ??= p.Get([.. x.Shape.AsSpan(0, x.Rank - 1), Out]);
        if (!p.Training)
        {
            p.Be.Linear(x, Weight, Bias, y, act, accumulate);
            return y;
        }
        (_x, _act, _pre) = (x, act, null);
        if (act == Activation.None) p.Be.Linear(x, Weight, Bias, y, act, accumulate);
        else
        {
            if (accumulate) throw new ArgumentException("Linear: accumulate needs act = None");
            _pre = p.Get(y.Shape);
            p.Be.Linear(x, Weight, Bias, _pre);
            p.Be.Apply(act, _pre, y);
        }
        return y;
    }

    /// <summary>dW += dyᵀ·x, db += Σ dy, dx (=, or += with <paramref name="accumulateDx"/>) = dy·W; dx null: not needed.
    /// With an activation, <paramref name="dy"/> is turned into the pre-activation's gradient in place first.</summary>
    public void Backward(Pass p, Tensor dy, Tensor? dx, bool accumulateDx = false)
    {
        if (_pre is not null) p.Tb.ActivationBackward(_act, dy, _pre, dy);
        p.Tb.LinearBackward(dy, _x!, Weight, dx, p.Grad(Weight), Bias is null ? null : p.Grad(Bias), accumulateDx);
    }
}

/// <summary>Layer normalisation over the last dimension, γ and β per feature.</summary>
public sealed class LayerNorm(Tensor gamma, Tensor beta, float eps)
{
    public Tensor Gamma { get; } = gamma;
    public Tensor Beta { get; } = beta;
    public float Eps { get; } = eps;

    // Saved by a training forward: the input and each row's mean and 1/std (F32).
    private Tensor? _x, _mean, _rstd;

    public static LayerNorm From(ParameterSet p, string prefix, float eps) => new(p[prefix + ".weight"], p[prefix + ".bias"], eps);

    public static IEnumerable<(string, int[])> Layout(string prefix, int dim) =>
        [(prefix + ".weight", [dim]), (prefix + ".bias", [dim])];

    public Tensor Forward(Pass p, Tensor x, Tensor? y = null)
    {
        y ??= p.Get(x.Shape);
        if (p.Training)
        {
            int rows = checked((int)(x.Length / x.Dim(-1)));
            _x = x;
            _mean = p.Get(DType.F32, rows);
            _rstd = p.Get(DType.F32, rows);
            p.Tb.LayerNormTrain(x, Gamma, Beta, Eps, y, _mean, _rstd);
        }
        else p.Be.LayerNorm(x, Gamma, Beta, Eps, y);
        return y;
    }

    /// <summary>dγ += Σ dy·x̂, dβ += Σ dy; dx (=, or += with <paramref name="accumulateDx"/>: the residual stream).</summary>
    public void Backward(Pass p, Tensor dy, Tensor dx, bool accumulateDx = false) =>
        p.Tb.LayerNormBackward(dy, _x!, Gamma, _mean!, _rstd!, dx, p.Grad(Gamma), p.Grad(Beta), accumulateDx);
}

/// <summary>fc2(dropout(act(fc1(x)))): the ViT MLP and both Mixer MLPs.</summary>
public sealed class Mlp(Linear fc1, Linear fc2, Activation act)
{
    public Linear Fc1 { get; } = fc1;
    public Linear Fc2 { get; } = fc2;
    public Activation Act { get; } = act;

    private Tensor? _mask; // dropout on the hidden activations (training)

    public static Mlp From(ParameterSet p, string prefix, Activation act) =>
        new(Linear.From(p, prefix + ".fc1"), Linear.From(p, prefix + ".fc2"), act);

    public static IEnumerable<(string, int[])> Layout(string prefix, int dim, int hidden) =>
        Linear.Layout(prefix + ".fc1", dim, hidden).Concat(Linear.Layout(prefix + ".fc2", hidden, dim));

    /// <summary>Returns the output, or adds it into <paramref name="residual"/> and returns that.</summary>
    public Tensor Forward(Pass p, Tensor x, Tensor? residual = null)
    {
        var h = Fc1.Forward(p, x, act: Act);
        if (p.Training)
        {
            _mask = p.Mask(h.Shape, p.DropRate, 0);
            if (_mask is not null) p.ApplyMask(h, _mask, h);
        }
        return Fc2.Forward(p, h, residual, accumulate: residual is not null);
    }

    public void Backward(Pass p, Tensor dy, Tensor dx)
    {
        var dh = p.Get([.. dy.Shape.AsSpan(0, dy.Rank - 1), Fc1.Out]);
        Fc2.Backward(p, dy, dh);
        if (_mask is not null) p.ApplyMask(dh, _mask, dh);
        Fc1.Backward(p, dh, dx);
    }
}

/// <summary>Multi-head self-attention with one fused qkv projection (timm layout) and an output projection. The inner
/// width (heads × head width) need not be the model width; qk_norm (timm) normalises each head's q and k. A causal
/// attention (a text tower's) lets token i see tokens 0…i only; it runs in inference only.</summary>
public sealed class Attention(Linear qkv, Linear proj, int heads, LayerNorm? qNorm = null, LayerNorm? kNorm = null, bool causal = false)
{
    public bool Causal { get; } = causal;
    public Linear Qkv { get; } = qkv;
    public Linear Proj { get; } = proj;
    public int Heads { get; } = heads;
    public LayerNorm? QNorm { get; } = qNorm;
    public LayerNorm? KNorm { get; } = kNorm;
    public int InnerDim => Qkv.Out / 3;
    /// <summary>1/√(head width), as in timm (the one definition: inference, training and export all read it).</summary>
    public float Scale => 1f / MathF.Sqrt(InnerDim / Heads);

    private Tensor? _qkv, _qkvRaw, _probs, _ctx, _lse; // saved by a training forward (_qkvRaw: before qk_norm; _ctx and _lse: flash)

    public static Attention From(ParameterSet p, string prefix, int heads, bool qkvBias, bool projBias = true, bool qkNorm = false, float eps = 1e-6f,
        bool causal = false) =>
        new(Linear.From(p, prefix + ".qkv", qkvBias), Linear.From(p, prefix + ".proj", projBias), heads,
            qkNorm ? LayerNorm.From(p, prefix + ".q_norm", eps) : null, qkNorm ? LayerNorm.From(p, prefix + ".k_norm", eps) : null, causal);

    public static IEnumerable<(string, int[])> Layout(string prefix, int dim, bool qkvBias, int inner = 0, int heads = 1,
        bool projBias = true, bool qkNorm = false)
    {
        if (inner <= 0) inner = dim;
        var l = Linear.Layout(prefix + ".qkv", dim, 3 * inner, qkvBias);
        if (qkNorm) l = l.Concat(LayerNorm.Layout(prefix + ".q_norm", inner / heads)).Concat(LayerNorm.Layout(prefix + ".k_norm", inner / heads));
        return l.Concat(Linear.Layout(prefix + ".proj", inner, dim, projBias));
    }

    /// <summary>proj(softmax(q·kᵀ·scale)·v) for x (B, N, D); returns it, or adds it into <paramref name="residual"/>.</summary>
    public Tensor Forward(Pass p, Tensor x, Tensor? residual = null)
    {
        int b = x.Dim(0), n = x.Dim(1);
        var qkv = Qkv.Forward(p, x);
        if (QNorm is not null)
        {
            // Training keeps the projection's output for the norm's backward and normalises a copy.
            if (p.Training)
            {
                _qkvRaw = qkv;
                qkv = p.Get(qkv.Shape);
                p.Tb.Copy(_qkvRaw, qkv);
            }
            p.Be.QkNorm(qkv, Heads, QNorm.Gamma, QNorm.Beta, KNorm!.Gamma, KNorm.Beta, QNorm.Eps);
        }
        var ctx = p.Get(b, n, InnerDim);
        if (Causal)
        {
            if (p.Training) throw new NotSupportedException("causal attention (a text tower) runs in inference only");
            p.Be.CausalAttention(qkv, ctx, Heads, Scale);
            return Proj.Forward(p, ctx, residual, accumulate: residual is not null);
        }
        if (p.Training && p.Tb.TrainsAttentionFromLse(Heads, InnerDim / Heads, n))
        {
            // Flash attention: the backward recomputes the probabilities from each row's log-sum-exp.
            var lse = p.Get(DType.F32, b, Heads, n);
            p.Tb.AttentionTrainLse(qkv, ctx, lse, Heads, Scale);
            (_qkv, _ctx, _lse, _probs) = (qkv, ctx, lse, null);
            return Proj.Forward(p, ctx, residual, accumulate: residual is not null);
        }
        var probs = p.AttentionProbs(b, Heads, n);
        p.Be.Attention(qkv, ctx, Heads, Scale, probs);
        if (p.Training) (_qkv, _probs, _ctx, _lse) = (qkv, probs, null, null);
        return Proj.Forward(p, ctx, residual, accumulate: residual is not null);
    }

    public void Backward(Pass p, Tensor dy, Tensor dx)
    {
        var dctx = p.Get(dy.Dim(0), dy.Dim(1), InnerDim);
        Proj.Backward(p, dy, dctx);
        var dqkv = p.Get(_qkv!.Shape);
        if (_lse is not null) p.Tb.AttentionBackwardLse(dctx, _qkv, _ctx!, _lse, dqkv, Heads, Scale);
        else p.Tb.AttentionBackward(dctx, _qkv, _probs!, dqkv, Heads, Scale);
        if (QNorm is not null)
            p.Tb.QkNormBackward(dqkv, _qkvRaw!, Heads, QNorm.Gamma, KNorm!.Gamma, QNorm.Eps,
                p.Grad(QNorm.Gamma), p.Grad(QNorm.Beta), p.Grad(KNorm.Gamma), p.Grad(KNorm.Beta));
        Qkv.Backward(p, dqkv, dx);
    }
}

/// <summary>timm's LayerScale: y = x ⊙ γ per channel (ls1, ls2 on a block's two branches).</summary>
public sealed class LayerScale(Tensor gamma)
{
    public Tensor Gamma { get; } = gamma;
    private Tensor? _x;

    public static LayerScale From(ParameterSet p, string prefix) => new(p[prefix + ".gamma"]);

    public static IEnumerable<(string, int[])> Layout(string prefix, int dim) => [(prefix + ".gamma", [dim])];

    /// <summary>In place in inference; a new tensor in training (the backward reads x).</summary>
    public Tensor Forward(Pass p, Tensor x)
    {
        if (!p.Training)
        {
            p.Be.MulChannels(x, Gamma, x);
            return x;
        }
        _x = x;
        var y = p.Get(x.Shape);
        p.Be.MulChannels(x, Gamma, y);
        return y;
    }

    public Tensor Backward(Pass p, Tensor dy)
    {
        var dx = p.Get(dy.Shape);
        p.Tb.MulChannelsBackward(dy, _x!, Gamma, dx, p.Grad(Gamma));
        return dx;
    }
}

/// <summary>
/// big_vision/SigLIP's attention-pool head (timm's AttentionPoolLatent, global_pool='map'): one learned latent query
/// attends over every token (q from the latent, k and v from the tokens), then proj, and x + mlp(norm(x)). Output (B, D).
/// </summary>
public sealed class AttentionPool(Tensor latent, Linear q, Linear kv, Linear proj, LayerNorm norm, Mlp mlp, int heads)
{
    // Saved by a training forward.
    private Tensor? _query, _keysValues;

    public static AttentionPool From(ParameterSet p, string prefix, int heads, float eps, Activation act) => new(
        p[prefix + ".latent"], Linear.From(p, prefix + ".q"), Linear.From(p, prefix + ".kv"), Linear.From(p, prefix + ".proj"),
        LayerNorm.From(p, prefix + ".norm", eps), Mlp.From(p, prefix + ".mlp", act), heads);

    public static IEnumerable<(string, int[])> Layout(string prefix, int dim, int hidden) =>
        new (string, int[])[] { (prefix + ".latent", [1, 1, dim]) }
            .Concat(Linear.Layout(prefix + ".q", dim, dim)).Concat(Linear.Layout(prefix + ".kv", dim, 2 * dim))
            .Concat(Linear.Layout(prefix + ".proj", dim, dim)).Concat(LayerNorm.Layout(prefix + ".norm", dim))
            .Concat(Mlp.Layout(prefix + ".mlp", dim, hidden));

    private float Scale(int d) => 1f / MathF.Sqrt(d / heads);

    public Tensor Forward(Pass p, Tensor tokens, Tensor? y = null)
    {
        int b = tokens.Dim(0), d = tokens.Dim(2);
        var query = q.Forward(p, latent);
        var keysValues = kv.Forward(p, tokens);
        var ctx = p.Get(b, 1, d);
        p.Be.CrossAttention(query, keysValues, ctx, heads, Scale(d));
        var x = proj.Forward(p, ctx);
        if (p.Training)
        {
            (_query, _keysValues) = (query, keysValues);
            var m = mlp.Forward(p, norm.Forward(p, x));
            var sum = p.Get(x.Shape);
            p.Be.Add(x, m, sum);
            x = sum;
        }
        else mlp.Forward(p, norm.Forward(p, x), x);
        y ??= p.Get(b, d);
        p.Be.SelectToken(x, 0, y);
        return y;
    }

    /// <summary>dy (B, D) → dtokens (=); the head's parameter gradients (the latent's among them) +=.</summary>
    public void Backward(Pass p, Tensor dy, Tensor dtokens)
    {
        int b = dy.Dim(0), d = dy.Dim(1);
        var dx = p.Get(b, 1, d);
        p.Tb.SelectTokenBackward(dy, 0, dx);
        var dh = p.Get(b, 1, d);
        mlp.Backward(p, dx, dh);
        norm.Backward(p, dh, dx, accumulateDx: true);
        var dctx = p.Get(b, 1, d);
        proj.Backward(p, dx, dctx);
        var dq = p.Get(_query!.Shape);
        var dkv = p.Get(_keysValues!.Shape);
        p.Tb.CrossAttentionBackward(dctx, _query, _keysValues, dq, dkv, heads, Scale(d));
        kv.Backward(p, dkv, dtokens);
        q.Backward(p, dq, p.Grad(latent), accumulateDx: true);
    }
}

/// <summary>Conv2d with kernel = stride = P, as a GEMM over unfolded patches. Weight (D, C, P, P); output (B, Np, D).
/// vit-pytorch's form adds a LayerNorm over each patch's pixels before the projection (the pixels unfolded in the
/// weight's (c, p1, p2) order, the projection a Linear on them) and one after it.</summary>
public sealed class PatchEmbed(Tensor weight, Tensor bias, int patch, LayerNorm? pixelNorm = null, LayerNorm? norm = null)
{
    public Tensor Weight { get; } = weight;
    public Tensor Bias { get; } = bias;
    public int Patch { get; } = patch;
    public LayerNorm? PixelNorm { get; } = pixelNorm;
    public LayerNorm? Norm { get; } = norm;

    private Tensor? _images; // saved by a training forward (the caller keeps it alive until the backward)
    private Linear? _linear;

    public static PatchEmbed From(ParameterSet p, string prefix, int patch, bool pixelNorm = false, bool norm = false, float eps = 1e-6f)
    {
        var root = prefix[..prefix.LastIndexOf('.')];
        return new(p[prefix + ".weight"], p[prefix + ".bias"], patch,
            pixelNorm ? LayerNorm.From(p, root + ".pixel_norm", eps) : null, norm ? LayerNorm.From(p, root + ".norm", eps) : null);
    }

    public static IEnumerable<(string, int[])> Layout(string prefix, int inChans, int dim, int patch, bool pixelNorm = false, bool norm = false)
    {
        var root = prefix[..prefix.LastIndexOf('.')];
        IEnumerable<(string, int[])> l = [(prefix + ".weight", [dim, inChans, patch, patch]), (prefix + ".bias", [dim])];
        if (pixelNorm) l = LayerNorm.Layout(root + ".pixel_norm", inChans * patch * patch).Concat(l);
        if (norm) l = l.Concat(LayerNorm.Layout(root + ".norm", dim));
        return l;
    }

    public Tensor Forward(Pass p, Tensor images, Tensor? y = null)
    {
        int grid = images.Dim(2) / Patch * (images.Dim(3) / Patch);
        int d = Weight.Dim(0);
        var final = Norm is null ? y : null;
        Tensor proj;
        if (PixelNorm is null)
        {
            proj = final ?? p.Get(images.Dim(0), grid, d);
            p.Be.PatchEmbed(images, Weight, Bias, proj, Patch);
            if (p.Training) _images = images;
        }
        else
        {
            var pixels = p.Get(images.Dim(0), grid, Weight.Dim(1) * Patch * Patch);
            p.Be.UnfoldPatches(images, pixels, Patch);
            _linear ??= new Linear(Weight.View(d, pixels.Dim(2)), Bias);
            proj = _linear.Forward(p, PixelNorm.Forward(p, pixels), final);
        }
        return Norm is null ? proj : Norm.Forward(p, proj, y);
    }

    /// <summary>Parameter gradients only: images need none.</summary>
    public void Backward(Pass p, Tensor dy)
    {
        if (Norm is not null)
        {
            var dProj = p.Get(dy.Shape);
            Norm.Backward(p, dy, dProj);
            dy = dProj;
        }
        if (PixelNorm is null)
        {
            p.Tb.PatchEmbedBackward(dy, _images!, p.Grad(Weight), p.Grad(Bias), Patch);
            return;
        }
        var dPixels = p.Get(dy.Dim(0), dy.Dim(1), _linear!.In);
        // The Linear's weight is a view of the convolution's weight: its gradient is the same view of the gradient.
        p.Tb.LinearBackward(dy, LinearInput!, _linear.Weight, dPixels, p.Grad(Weight).View(_linear.Weight.Shape), p.Grad(Bias));
        var dRaw = p.Get(dPixels.Shape);
        PixelNorm.Backward(p, dPixels, dRaw);
    }

    private Tensor? LinearInput => _linear?.SavedInput;
}

/// <summary>
/// CCT's convolutional tokenizer (Hassani et al. 2021, SHI-Labs/Compact-Transformers' Tokenizer): per layer
/// conv 3×3 (stride 1, padding 1, no bias) → ReLU → max pool 3×3 (stride 2, padding 1), then the map flattened to
/// tokens (B, H·W, D) in row-major order. Weights tokenizer.conv_layers.{i}.0.weight (Cout, Cin, 3, 3), CCT's names.
/// The convolution is an unfold (B, H·W, Cin·9) times the weight read as a (Cout, Cin·9) Linear weight, so its output
/// is channels-last, the token layout; later layers read that layout. Inference runs each layer as one
/// <see cref="IBackend.Conv3x3"/> (ReLU in the product's epilogue) and one pool; training keeps the unfolded input,
/// the pre-activation and the activation for the backward.
/// </summary>
public sealed class ConvTokenizer(IReadOnlyList<Tensor> weights)
{
    public IReadOnlyList<Tensor> Weights { get; } = weights;

    // Saved by a training forward, per layer: the unfolded input, the conv output before and after ReLU.
    private readonly Tensor?[] _cols = new Tensor?[weights.Count], _pre = new Tensor?[weights.Count], _act = new Tensor?[weights.Count];
    private int _h0, _w0;

    public static string WeightName(int layer) => $"tokenizer.conv_layers.{layer}.0.weight";

    public static ConvTokenizer From(ParameterSet p, int layers) => new(Enumerable.Range(0, layers).Select(i => p[WeightName(i)]).ToList());

    public static IEnumerable<(string, int[])> Layout(ConvTokenizerConfig c, int inChans, int dim)
    {
        for (int i = 0; i < c.Layers; i++)
        {
            var (cout, cin) = c.LayerChannels(i, inChans, dim);
            yield return (WeightName(i), [cout, cin, 3, 3]);
        }
    }

    /// <summary>images (B, C, H, W) → tokens (B, H/2^L · W/2^L, D), written into <paramref name="y"/> when given.</summary>
    public Tensor Forward(Pass p, Tensor images, Tensor? y = null)
    {
        int b = images.Dim(0), h = images.Dim(2), w = images.Dim(3);
        (_h0, _w0) = (h, w);
        var x = images;
        for (int i = 0; i < Weights.Count; i++)
        {
            var wt = Weights[i];
            int cout = wt.Dim(0), cin = wt.Dim(1), ho = HostOps.PooledSize(h), wo = HostOps.PooledSize(w);
            var pooled = i == Weights.Count - 1 && y is not null ? y : p.Get(b, ho * wo, cout);
            using (p.Scope())
            {
                var cols = p.Get(b, h * w, cin * 9);
                var act = p.Get(b, h * w, cout);
                if (p.Training)
                {
                    var pre = p.Get(b, h * w, cout);
                    p.Be.Im2Col3x3(x, cols, h, w, channelsFirst: i == 0);
                    p.Be.Linear(cols, wt.View(cout, cin * 9), null, pre);
                    p.Be.Apply(Activation.Relu, pre, act);
                    (_cols[i], _pre[i], _act[i]) = (cols, pre, act);
                }
                else p.Be.Conv3x3(x, wt, cols, act, h, w, channelsFirst: i == 0, Activation.Relu);
                p.Be.MaxPool3x3s2(act, pooled, h, w);
            }
            (x, h, w) = (pooled, ho, wo);
        }
        return x;
    }

    /// <summary>dy (B, N, D), the tokens' gradient → every conv weight's gradient (+=); the images need none. dy is
    /// left unchanged.</summary>
    public void Backward(Pass p, Tensor dy)
    {
        int b = dy.Dim(0), layers = Weights.Count;
        var hs = new int[layers];
        var ws = new int[layers];
        (hs[0], ws[0]) = (_h0, _w0);
        for (int i = 1; i < layers; i++) (hs[i], ws[i]) = (HostOps.PooledSize(hs[i - 1]), HostOps.PooledSize(ws[i - 1]));
        var g = dy;
        for (int i = layers - 1; i >= 0; i--)
        {
            var wt = Weights[i];
            int cout = wt.Dim(0), cin = wt.Dim(1), h = hs[i], w = ws[i];
            var dAct = p.Get(b, h * w, cout);
            p.Tb.MaxPool3x3s2Backward(g, _act[i]!, dAct, h, w);
            p.Tb.ActivationBackward(Activation.Relu, dAct, _pre[i]!, dAct);
            var dCols = i > 0 ? p.Get(b, h * w, cin * 9) : null;
            // The Linear's weight is a view of the convolution's weight: its gradient is the same view of the gradient.
            p.Tb.LinearBackward(dAct, _cols[i]!, wt.View(cout, cin * 9), dCols, p.Grad(wt).View(cout, cin * 9), null);
            if (dCols is null) break;
            var dx = p.Get(b, h * w, cin);
            p.Tb.Im2Col3x3Backward(dCols, dx, h, w);
            g = dx;
        }
    }
}

/// <summary>x = dropout([prefix tokens ; patches] + pos): the class, distillation and register tokens (each optional,
/// in timm's order) and the position embedding (timm's pos_drop). <paramref name="pos"/> covers every token.</summary>
public sealed class TokenEmbed(IReadOnlyList<Tensor> prefix, Tensor pos)
{
    public IReadOnlyList<Tensor> PrefixTensors { get; } = prefix;
    public Tensor Pos { get; } = pos;
    public int Prefix { get; } = prefix.Sum(t => t.Dim(1));

    private Tensor? _mask;

    public static readonly string[] PrefixNames = ["cls_token", "dist_token", "reg_token"];

    public static TokenEmbed From(ParameterSet p, bool classToken, bool distToken = false, int regTokens = 0)
    {
        var prefix = new List<Tensor>();
        if (classToken) prefix.Add(p["cls_token"]);
        if (distToken) prefix.Add(p["dist_token"]);
        if (regTokens > 0) prefix.Add(p["reg_token"]);
        return new(prefix, p["pos_embed"]);
    }

    public static IEnumerable<(string, int[])> Layout(int tokens, int dim, bool classToken, bool distToken = false, int regTokens = 0)
    {
        if (classToken) yield return ("cls_token", [1, 1, dim]);
        if (distToken) yield return ("dist_token", [1, 1, dim]);
        if (regTokens > 0) yield return ("reg_token", [1, regTokens, dim]);
        yield return ("pos_embed", [1, tokens, dim]);
    }

    /// <param name="p">the pass.</param><param name="patches">the patch embeddings (B, N, D).</param>
    /// <param name="x">where to write the tokens (B, T, D), or null for a new tensor from the pass.</param>
    /// <param name="pos">The position embedding to add: <see cref="Pos"/>, or one resampled for another grid (inference).</param>
    public Tensor Forward(Pass p, Tensor patches, Tensor? x = null, Tensor? pos = null)
    {
        x ??= p.Get(patches.Dim(0), patches.Dim(1) + Prefix, patches.Dim(2));
        pos ??= Pos;
        if (PrefixTensors.Count <= 1) p.Be.Embed(patches, PrefixTensors.Count == 1 ? PrefixTensors[0] : null, pos, x);
        else p.Be.EmbedTokens(patches, PrefixTensors, pos, x);
        if (p.Training)
        {
            _mask = p.Mask(x.Shape, p.DropRate, 0);
            if (_mask is not null) p.ApplyMask(x, _mask, x);
        }
        return x;
    }

    /// <summary>dprefix +=, dpos += Σbatch dx; dpatches (=). <paramref name="dx"/> is masked in place.</summary>
    public void Backward(Pass p, Tensor dx, Tensor dpatches)
    {
        if (_mask is not null) p.ApplyMask(dx, _mask, dx);
        if (PrefixTensors.Count <= 1) p.Tb.EmbedBackward(dx, dpatches, PrefixTensors.Count == 1 ? p.Grad(PrefixTensors[0]) : null, p.Grad(Pos));
        else p.Tb.EmbedTokensBackward(dx, dpatches, PrefixTensors.Select(p.Grad).ToList(), p.Grad(Pos));
    }
}

/// <summary>Tokens (B, T, D) → (B, D): one token (the class token), or the mean or max of tokens [start, T).</summary>
public sealed class TokenPool(Pooling mode, int start)
{
    public TokenPool(bool meanTokens, int start) : this(meanTokens ? Pooling.Avg : Pooling.Token, start) { }

    public Pooling Mode { get; } = mode;
    public int Start { get; } = start;
    private Tensor? _x; // max pooling's backward reads its input

    public Tensor Forward(Pass p, Tensor x, Tensor? y = null)
    {
        y ??= p.Get(x.Dim(0), x.Dim(2));
        switch (Mode)
        {
            case Pooling.Avg: p.Be.MeanTokens(x, Start, y); break;
            case Pooling.Max: p.Be.MaxTokens(x, Start, y); if (p.Training) _x = x; break;
            default: p.Be.SelectToken(x, Start, y); break;
        }
        return y;
    }

    public void Backward(Pass p, Tensor dy, Tensor dx)
    {
        switch (Mode)
        {
            case Pooling.Avg: p.Tb.MeanTokensBackward(dy, Start, dx); break;
            case Pooling.Max: p.Tb.MaxTokensBackward(dy, _x!, Start, dx); break;
            default: p.Tb.SelectTokenBackward(dy, Start, dx); break;
        }
    }
}

/// <summary>
/// CCT's sequence pooling (Hassani et al. 2021, SHI-Labs/Compact-Transformers' TransformerClassifier with seq_pool):
/// tokens x (B, N, D) → scores sₙ = xₙ·g + c (a Linear D → 1: attention_pool.weight (1, D), attention_pool.bias (1),
/// CCT's names) → w = softmax over all N tokens → Σₙ wₙ·xₙ (B, D). c cancels in the softmax (its gradient is 0) but CCT's
/// checkpoints have it. The backward: dx = wₙ·dp + dsₙ·g with dsₙ = wₙ(xₙ·dp − Σₘ wₘ·xₘ·dp); dg += Σ dsₙ·xₙ, dc += Σ dsₙ.
/// </summary>
public sealed class SeqPool(Linear score)
{
    public const string Prefix = "attention_pool";
    public Linear Score { get; } = score;

    // Saved by a training forward: the tokens and the softmax weights (F32).
    private Tensor? _x, _weights;

    public static SeqPool From(ParameterSet p) => new(Linear.From(p, Prefix));

    public static IEnumerable<(string, int[])> Layout(int dim) => Linear.Layout(Prefix, dim, 1);

    /// <summary>The softmax weights of the last forward (B, N), F32; null before one.</summary>
    public Tensor? Weights => _weights;

    public Tensor Forward(Pass p, Tensor x, Tensor? y = null)
    {
        int b = x.Dim(0), n = x.Dim(1);
        y ??= p.Get(b, x.Dim(2));
        var scores = Score.Forward(p, x);
        var weights = p.Get(DType.F32, b, n);
        p.Be.SeqPool(x, scores, weights, y);
        if (p.Training) (_x, _weights) = (x, weights);
        return y;
    }

    /// <summary>dy (B, D) → dx (B, N, D) (=); the score Linear's gradients +=.</summary>
    public void Backward(Pass p, Tensor dy, Tensor dx)
    {
        var dscores = p.Get(_x!.Dim(0), _x.Dim(1), 1);
        p.Tb.SeqPoolBackward(dy, _x, _weights!, dx, dscores);
        Score.Backward(p, dscores, dx, accumulateDx: true);
    }
}

/// <summary>Mixer token mixing: Tᵀ(mlp(T(x))) where T swaps patches and channels, so the MLP runs across patches.</summary>
public sealed class TokenMixing(Mlp mlp)
{
    public Mlp Mlp { get; } = mlp;

    public Tensor Forward(Pass p, Tensor x)
    {
        int b = x.Dim(0), n = x.Dim(1), d = x.Dim(2);
        var t = p.Get(b, d, n);
        p.Be.Transpose12(x, t);
        var mixed = Mlp.Forward(p, t);
        var y = p.Get(b, n, d);
        p.Be.Transpose12(mixed, y);
        return y;
    }

    public void Backward(Pass p, Tensor dy, Tensor dx)
    {
        int b = dy.Dim(0), n = dy.Dim(1), d = dy.Dim(2);
        var dt = p.Get(b, d, n);
        p.Be.Transpose12(dy, dt);
        var dIn = p.Get(b, d, n);
        Mlp.Backward(p, dt, dIn);
        p.Be.Transpose12(dIn, dx);
    }
}

/// <summary>
/// x + drop_path(dropout(branch)), the residual connection around a block's branch. Inference: the branch has already
/// been added into x in place (its last Linear accumulates, see <see cref="Into"/>), or is added now. Training: the
/// branch output is masked (one mask: dropout per element × drop path per sample) and the sum is a new tensor, because
/// the backward reads both x and the branch's input.
/// </summary>
public sealed class Residual
{
    private Tensor? _mask;

    /// <summary>Where the branch should add its output: x itself in inference, nowhere (a new tensor) in training.</summary>
    public static Tensor? Into(Pass p, Tensor x) => p.Training ? null : x;

    public Tensor Forward(Pass p, Tensor x, Tensor branch, float dropPath)
    {
        if (!p.Training)
        {
            if (!ReferenceEquals(branch, x)) p.Be.Add(x, branch, x);
            return x;
        }
        _mask = p.Mask(x.Shape, p.DropRate, dropPath);
        if (_mask is not null) p.ApplyMask(branch, _mask, branch);
        var y = p.Get(x.Shape);
        p.Be.Add(x, branch, y);
        return y;
    }

    /// <summary>The branch output's gradient: <paramref name="dy"/> itself, or masked into scratch. The residual's own
    /// gradient passes through unchanged (dx = dy + the branch's input gradient, added by the branch's first LayerNorm).</summary>
    public Tensor Backward(Pass p, Tensor dy)
    {
        if (_mask is null) return dy;
        var d = p.Get(dy.Shape);
        p.ApplyMask(dy, _mask, d);
        return d;
    }
}
