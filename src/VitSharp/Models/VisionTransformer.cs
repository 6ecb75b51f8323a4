using VitSharp.Backends;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Models;

/// <summary>
/// ViT: patches → linear embedding, [class token], + position embedding, pre-LN Transformer blocks, final norm,
/// pooling (class token, or mean with timm's fc_norm after it), optional pre-logits, head. Parameter names are timm's.
/// </summary>
public sealed class VisionTransformer : VisionModel
{
    private readonly PatchEmbed _patchEmbed;
    private readonly Block[] _blocks;
    private readonly LayerNorm? _norm, _fcNorm;
    private readonly Linear? _preLogits, _head;

    public VisionTransformer(VitConfig config, IBackend backend) : base(config, backend, Layout(config))
    {
        var p = Parameters;
        _patchEmbed = PatchEmbed.From(p, "patch_embed.proj", config.PatchSize);
        _blocks = Enumerable.Range(0, config.Depth).Select(i => Block.From(p, $"blocks.{i}", config)).ToArray();
        if (config.FcNorm) _fcNorm = LayerNorm.From(p, "fc_norm", config.LayerNormEps);
        else _norm = LayerNorm.From(p, "norm", config.LayerNormEps);
        if (config.RepresentationSize > 0) _preLogits = Linear.From(p, "pre_logits.fc");
        if (config.NumClasses > 0) _head = Linear.From(p, "head");
    }

    public new VitConfig Config => (VitConfig)base.Config;

    public static IEnumerable<(string, int[])> Layout(VitConfig c)
    {
        int d = c.EmbedDim;
        foreach (var l in PatchEmbed.Layout("patch_embed.proj", c.InChannels, d, c.PatchSize)) yield return l;
        if (c.ClassToken) yield return ("cls_token", [1, 1, d]);
        yield return ("pos_embed", [1, c.NumTokens, d]);
        for (int i = 0; i < c.Depth; i++)
            foreach (var l in Block.Layout($"blocks.{i}", c)) yield return l;
        foreach (var l in LayerNorm.Layout(c.FcNorm ? "fc_norm" : "norm", d)) yield return l;
        if (c.RepresentationSize > 0)
            foreach (var l in Linear.Layout("pre_logits.fc", d, c.RepresentationSize)) yield return l;
        if (c.NumClasses > 0)
            foreach (var l in Linear.Layout("head", c.FeatureDim, c.NumClasses)) yield return l;
    }

    public override ModelOutput Forward(Tensor images, bool captureAttention = false)
    {
        CheckInput(images.Shape);
        lock (ForwardLock)
        {
            Activations.Reset();
            return Forward(images, captureAttention, Activations);
        }
    }

    private ModelOutput Forward(Tensor images, bool captureAttention, Workspace ws)
    {
        var c = Config;
        var be = Backend;
        int b = images.Dim(0), t = c.NumTokens, d = c.EmbedDim;
        var patches = ws.Get(b, c.NumPatches, d);
        _patchEmbed.Forward(be, images, patches);
        // Outputs the caller keeps are allocated outside the workspace; intermediate ones inside it.
        var x = _norm is null ? be.Allocate([b, t, d], be.ComputeType) : ws.Get(b, t, d);
        be.Embed(patches, c.ClassToken ? Parameters["cls_token"] : null, Parameters["pos_embed"], x);

        var scratch = new Block.Scratch(ws.Get(b, t, d), ws.Get(b, t, 3 * d), ws.Get(b, t, d), ws.Get(b, t, c.MlpDim));
        var probs = new List<Tensor>();
        foreach (var block in _blocks)
        {
            Tensor? p = null;
            if (captureAttention) { p = be.Allocate([b, c.NumHeads, t, t], be.ComputeType); probs.Add(p); }
            block.Forward(be, x, scratch, p);
        }

        Tensor tokens = x; // timm: the final norm is Identity when fc_norm is used
        if (_norm is not null)
        {
            tokens = be.Allocate([b, t, d], be.ComputeType);
            _norm.Forward(be, x, tokens);
        }

        var pooled = be.Allocate([b, c.FeatureDim], be.ComputeType);
        bool direct = _fcNorm is null && _preLogits is null;
        var pool = direct ? pooled : ws.Get(b, d);
        if (c.Pool == Pooling.Token) be.SelectToken(tokens, 0, pool);
        else be.MeanTokens(tokens, c.PrefixTokens, pool);
        if (_fcNorm is not null)
        {
            var normed = _preLogits is null ? pooled : ws.Get(b, d);
            _fcNorm.Forward(be, pool, normed);
            pool = normed;
        }
        _preLogits?.Forward(be, pool, pooled, Activation.Tanh);

        Tensor? logits = null;
        if (_head is not null)
        {
            logits = be.Allocate([b, c.NumClasses], be.ComputeType);
            _head.Forward(be, pooled, logits);
        }
        return new ModelOutput { Tokens = tokens, Pooled = pooled, Logits = logits, AttentionProbs = probs };
    }
}

/// <summary>Pre-LN Transformer encoder block: x += attn(norm1(x)); x += mlp(norm2(x)).</summary>
public sealed class Block(LayerNorm norm1, Attention attn, LayerNorm norm2, Mlp mlp)
{
    public sealed record Scratch(Tensor Normed, Tensor Qkv, Tensor Context, Tensor Hidden);

    public LayerNorm Norm1 { get; } = norm1;
    public Attention Attn { get; } = attn;
    public LayerNorm Norm2 { get; } = norm2;
    public Mlp Mlp { get; } = mlp;

    public static Block From(ParameterSet p, string prefix, VitConfig c) => new(
        LayerNorm.From(p, prefix + ".norm1", c.LayerNormEps),
        Attention.From(p, prefix + ".attn", c.NumHeads, c.QkvBias),
        LayerNorm.From(p, prefix + ".norm2", c.LayerNormEps),
        Mlp.From(p, prefix + ".mlp", c.Gelu));

    public static IEnumerable<(string, int[])> Layout(string prefix, VitConfig c) =>
        LayerNorm.Layout(prefix + ".norm1", c.EmbedDim)
            .Concat(Attention.Layout(prefix + ".attn", c.EmbedDim, c.QkvBias))
            .Concat(LayerNorm.Layout(prefix + ".norm2", c.EmbedDim))
            .Concat(Mlp.Layout(prefix + ".mlp", c.EmbedDim, c.MlpDim));

    public void Forward(IBackend be, Tensor x, Scratch s, Tensor? probs = null)
    {
        Norm1.Forward(be, x, s.Normed);
        Attn.Forward(be, s.Normed, s.Qkv, s.Context, x, probs);
        Norm2.Forward(be, x, s.Normed);
        Mlp.Forward(be, s.Normed, s.Hidden, x, accumulate: true);
    }
}
