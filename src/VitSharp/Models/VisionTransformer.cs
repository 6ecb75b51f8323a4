using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Models;

/// <summary>
/// ViT: patches → linear embedding, [class token], + position embedding, pre-LN Transformer blocks, final norm,
/// pooling (class token, or mean with timm's fc_norm after it), optional pre-logits, head. Parameter names are timm's.
/// The one definition of the model: inference, training, attention capture and ONNX export all run this forward.
/// </summary>
public sealed class VisionTransformer : VisionModel
{
    private readonly PatchEmbed _patchEmbed;
    private readonly TokenEmbed _embed;
    private readonly Block[] _blocks;
    private readonly LayerNorm? _norm, _fcNorm;
    private readonly TokenPool _pool;
    private readonly Linear? _preLogits, _head;

    public VisionTransformer(VitConfig config, IBackend backend) : base(config, backend, Layout(config))
    {
        var p = Parameters;
        _patchEmbed = PatchEmbed.From(p, "patch_embed.proj", config.PatchSize);
        _embed = TokenEmbed.From(p, config.ClassToken);
        _blocks = Enumerable.Range(0, config.Depth).Select(i => Block.From(p, $"blocks.{i}", config)).ToArray();
        if (config.FcNorm) _fcNorm = LayerNorm.From(p, "fc_norm", config.LayerNormEps);
        else _norm = LayerNorm.From(p, "norm", config.LayerNormEps);
        _pool = config.Pool == Pooling.Token ? new TokenPool(meanTokens: false, 0) : new TokenPool(meanTokens: true, config.PrefixTokens);
        if (config.RepresentationSize > 0) _preLogits = Linear.From(p, "pre_logits.fc");
        if (config.NumClasses > 0) _head = Linear.From(p, "head");
    }

    public new VitConfig Config => (VitConfig)base.Config;

    public static IEnumerable<(string, int[])> Layout(VitConfig c)
    {
        int d = c.EmbedDim;
        foreach (var l in PatchEmbed.Layout("patch_embed.proj", c.InChannels, d, c.PatchSize)) yield return l;
        foreach (var l in TokenEmbed.Layout(c.NumTokens, d, c.ClassToken)) yield return l;
        for (int i = 0; i < c.Depth; i++)
            foreach (var l in Block.Layout($"blocks.{i}", c)) yield return l;
        foreach (var l in LayerNorm.Layout(c.FcNorm ? "fc_norm" : "norm", d)) yield return l;
        if (c.RepresentationSize > 0)
            foreach (var l in Linear.Layout("pre_logits.fc", d, c.RepresentationSize)) yield return l;
        if (c.NumClasses > 0)
            foreach (var l in Linear.Layout("head", c.FeatureDim, c.NumClasses)) yield return l;
    }

    /// <summary>
    /// The inverse of <see cref="Layout"/>: the configuration whose layout these (timm-named) weights have. Widths, depth
    /// and patch come from the shapes, pooling from which norms exist; what shapes cannot say (heads, eps, GELU variant)
    /// from <paramref name="heads"/>, the hint, else timm's defaults (width/64 heads, eps 1e-6, exact GELU).
    /// </summary>
    public static VitConfig InferConfig(IReadOnlyDictionary<string, HostArray> w, string file, JsonObject? hint, int? heads)
    {
        var pe = ConfigInference.Shape(w, "patch_embed.proj.weight", file, 4);
        int d = pe[0], c = pe[1], p = pe[2];
        if (pe[3] != p) throw new CheckpointException(file, $"non-square patches {p}×{pe[3]} are not supported", "patch_embed.proj.weight");
        int depth = ConfigInference.CountBlocks(w, "norm1.weight");
        bool cls = w.ContainsKey("cls_token");
        var pos = ConfigInference.Shape(w, "pos_embed", file, 3);
        // timm's no_embed_class models (e.g. DeiT III) keep no position for the class token.
        bool noEmbedClass = cls && !ConfigInference.IsSquare(pos[1] - 1) && ConfigInference.IsSquare(pos[1]);
        int grid = ConfigInference.Grid(pos[1] - (cls && !noEmbedClass ? 1 : 0), file);
        bool fcNorm = w.ContainsKey("fc_norm.weight");
        return new VitConfig
        {
            ImageSize = grid * p, PatchSize = p, InChannels = c, EmbedDim = d, Depth = depth,
            NumHeads = heads ?? (int?)hint?["num_heads"] ?? ConfigInference.DefaultHeads(d, file),
            MlpDim = depth > 0 ? ConfigInference.Shape(w, "blocks.0.mlp.fc1.weight", file, 2)[0] : 4 * d,
            QkvBias = depth == 0 || w.ContainsKey("blocks.0.attn.qkv.bias"),
            ClassToken = cls,
            NoEmbedClass = noEmbedClass,
            Pool = fcNorm || !cls ? Pooling.Avg : Pooling.Token,
            FcNorm = fcNorm,
            RepresentationSize = w.ContainsKey("pre_logits.fc.weight") ? ConfigInference.Shape(w, "pre_logits.fc.weight", file, 2)[0] : 0,
            NumClasses = w.ContainsKey("head.weight") ? ConfigInference.Shape(w, "head.weight", file, 2)[0] : 0,
            LayerNormEps = ConfigInference.Eps(hint),
            Gelu = ConfigInference.Gelu(hint),
        };
    }

    public override ModelOutput Forward(Pass p, Tensor images)
    {
        var c = Config;
        int b = images.Dim(0), t = c.NumTokens, d = c.EmbedDim;
        var patches = _patchEmbed.Forward(p, images);
        // timm: the final norm is Identity when fc_norm is used, so the residual stream is the tokens output.
        var x = _embed.Forward(p, patches, _norm is null ? p.Output(b, t, d) : p.Get(b, t, d));
        for (int l = 0; l < _blocks.Length; l++) x = _blocks[l].Forward(p, x, p.DropPathAt(l, _blocks.Length));
        var tokens = _norm is null ? x : _norm.Forward(p, x, p.Output(b, t, d));

        var pooled = p.Output(b, c.FeatureDim);
        bool direct = _fcNorm is null && _preLogits is null;
        var feat = _pool.Forward(p, tokens, direct ? pooled : null);
        if (_fcNorm is not null) feat = _fcNorm.Forward(p, feat, _preLogits is null ? pooled : null);
        _preLogits?.Forward(p, feat, pooled, Activation.Tanh);

        var logits = _head?.Forward(p, pooled, p.Output(b, c.NumClasses));
        return new ModelOutput { Tokens = tokens, Pooled = pooled, Logits = logits, AttentionProbs = p.CapturedProbs };
    }

    public override void Backward(Pass p, Tensor dlogits)
    {
        var c = Config;
        int b = dlogits.Dim(0), t = c.NumTokens, d = c.EmbedDim;
        // Head, pre-logits, fc_norm: back to the pooled features.
        var dFeat = p.Get(b, c.FeatureDim);
        _head!.Backward(p, dlogits, dFeat);
        if (_preLogits is not null)
        {
            var dIn = p.Get(b, d);
            _preLogits.Backward(p, dFeat, dIn);
            dFeat = dIn;
        }
        if (_fcNorm is not null)
        {
            var dIn = p.Get(b, d);
            _fcNorm.Backward(p, dFeat, dIn);
            dFeat = dIn;
        }
        // Pooling and the final norm: into the residual stream's gradient, which every block then updates in place.
        var dx = p.Get(b, t, d);
        if (_norm is null) _pool.Backward(p, dFeat, dx);
        else
        {
            var dTokens = p.Get(b, t, d);
            _pool.Backward(p, dFeat, dTokens);
            _norm.Backward(p, dTokens, dx);
        }
        for (int l = _blocks.Length - 1; l >= 0; l--) _blocks[l].Backward(p, dx);
        var dPatches = p.Get(b, c.NumPatches, d);
        _embed.Backward(p, dx, dPatches);
        _patchEmbed.Backward(p, dPatches);
    }
}

/// <summary>Pre-LN Transformer encoder block: x += drop_path(attn(norm1(x))); x += drop_path(mlp(norm2(x))).</summary>
public sealed class Block(LayerNorm norm1, Attention attn, LayerNorm norm2, Mlp mlp)
{
    public LayerNorm Norm1 { get; } = norm1;
    public Attention Attn { get; } = attn;
    public LayerNorm Norm2 { get; } = norm2;
    public Mlp Mlp { get; } = mlp;
    private readonly Residual _attnResidual = new(), _mlpResidual = new();

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

    /// <summary>Returns the new residual stream: x itself, updated in place, in inference; a new tensor in training.</summary>
    public Tensor Forward(Pass p, Tensor x, float dropPath)
    {
        using (p.Scope()) x = _attnResidual.Forward(p, x, Attn.Forward(p, Norm1.Forward(p, x), Residual.Into(p, x)), dropPath);
        using (p.Scope()) x = _mlpResidual.Forward(p, x, Mlp.Forward(p, Norm2.Forward(p, x), Residual.Into(p, x)), dropPath);
        return x;
    }

    /// <summary>dx: the gradient of the block's output on entry, of its input on return (each norm adds its branch's share).</summary>
    public void Backward(Pass p, Tensor dx)
    {
        using (p.Scope())
        {
            var dh = p.Get(dx.Shape);
            Mlp.Backward(p, _mlpResidual.Backward(p, dx), dh);
            Norm2.Backward(p, dh, dx, accumulateDx: true);
        }
        using (p.Scope())
        {
            var dh = p.Get(dx.Shape);
            Attn.Backward(p, _attnResidual.Backward(p, dx), dh);
            Norm1.Backward(p, dh, dx, accumulateDx: true);
        }
    }
}
