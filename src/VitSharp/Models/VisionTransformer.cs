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
    private readonly PatchEmbed? _patchEmbed;
    private readonly ConvTokenizer? _tokenizer;
    private readonly TokenEmbed _embed;
    private readonly LayerNorm? _normPre;
    private readonly Block[] _blocks;
    private readonly LayerNorm? _norm, _fcNorm;
    private readonly TokenPool _pool;
    private readonly AttentionPool? _attnPool;
    private readonly SeqPool? _seqPool;
    private readonly Linear? _preLogits, _head, _headDist;
    // dynamic_img_size: the position embedding resampled per grid (inference), dropped when the weights change.
    private readonly Dictionary<(int, int), Tensor> _posCache = new();

    public VisionTransformer(VitConfig config, IBackend backend) : base(config, backend, Layout(config))
    {
        var p = Parameters;
        float eps = config.LayerNormEps;
        if (config.ConvTokenizer is { } ct) _tokenizer = ConvTokenizer.From(p, ct.Layers);
        else _patchEmbed = PatchEmbed.From(p, "patch_embed.proj", config.PatchSize, config.PixelNorm, config.PatchEmbedNorm, eps);
        _embed = TokenEmbed.From(p, config.ClassToken, config.DistToken, config.RegTokens);
        if (config.PreNorm) _normPre = LayerNorm.From(p, "norm_pre", eps);
        _blocks = Enumerable.Range(0, config.Depth).Select(i => Block.From(p, $"blocks.{i}", config)).ToArray();
        if (config.FcNorm) _fcNorm = LayerNorm.From(p, "fc_norm", eps);
        else _norm = LayerNorm.From(p, "norm", eps);
        _pool = new TokenPool(config.Pool is Pooling.Map or Pooling.Seq ? Pooling.Token : config.Pool, config.Pool == Pooling.Token ? 0 : config.PrefixTokens);
        if (config.Pool == Pooling.Map) _attnPool = AttentionPool.From(p, "attn_pool", config.NumHeads, eps, config.Gelu);
        if (config.Pool == Pooling.Seq) _seqPool = SeqPool.From(p);
        if (config.RepresentationSize > 0) _preLogits = Linear.From(p, "pre_logits.fc");
        if (config.NumClasses > 0) _head = Linear.From(p, "head");
        if (config.NumClasses > 0 && config.DistToken) _headDist = Linear.From(p, "head_dist");
    }

    public new VitConfig Config => (VitConfig)base.Config;

    public static IEnumerable<(string, int[])> Layout(VitConfig c)
    {
        int d = c.EmbedDim;
        var stem = c.ConvTokenizer is { } ct ? ConvTokenizer.Layout(ct, c.InChannels, d)
            : PatchEmbed.Layout("patch_embed.proj", c.InChannels, d, c.PatchSize, c.PixelNorm, c.PatchEmbedNorm);
        foreach (var l in stem) yield return l;
        foreach (var l in TokenEmbed.Layout(c.NumTokens, d, c.ClassToken, c.DistToken, c.RegTokens)) yield return l;
        if (c.PreNorm) foreach (var l in LayerNorm.Layout("norm_pre", d)) yield return l;
        for (int i = 0; i < c.Depth; i++)
            foreach (var l in Block.Layout($"blocks.{i}", c)) yield return l;
        foreach (var l in LayerNorm.Layout(c.FcNorm ? "fc_norm" : "norm", d)) yield return l;
        if (c.Pool == Pooling.Map) foreach (var l in AttentionPool.Layout("attn_pool", d, c.MlpDim)) yield return l;
        if (c.Pool == Pooling.Seq) foreach (var l in SeqPool.Layout(d)) yield return l;
        if (c.RepresentationSize > 0)
            foreach (var l in Linear.Layout("pre_logits.fc", d, c.RepresentationSize)) yield return l;
        if (c.NumClasses > 0)
            foreach (var l in Linear.Layout("head", c.FeatureDim, c.NumClasses)) yield return l;
        if (c.NumClasses > 0 && c.DistToken)
            foreach (var l in Linear.Layout("head_dist", d, c.NumClasses)) yield return l;
    }

    /// <summary>
    /// The inverse of <see cref="Layout"/>: the configuration whose layout these (timm-named) weights have. Widths, depth
    /// and patch come from the shapes, pooling from which norms exist; what shapes cannot say (heads, eps, GELU variant)
    /// from <paramref name="heads"/>, the hint, else timm's defaults (width/64 heads, eps 1e-6, exact GELU).
    /// </summary>
    public static VitConfig InferConfig(IReadOnlyDictionary<string, HostArray> w, string file, JsonObject? hint, int? heads)
    {
        var convTokenizer = InferConvTokenizer(w, file);
        int d, c, p;
        if (convTokenizer is { } ct)
        {
            d = ConfigInference.Shape(w, ConvTokenizer.WeightName(ct.Layers - 1), file, 4)[0];
            c = ConfigInference.Shape(w, ConvTokenizer.WeightName(0), file, 4)[1];
            p = ct.Stride;
        }
        else
        {
            var pe = ConfigInference.Shape(w, "patch_embed.proj.weight", file, 4);
            (d, c, p) = (pe[0], pe[1], pe[2]);
            if (pe[3] != p) throw new CheckpointException(file, $"non-square patches {p}×{pe[3]} are not supported", "patch_embed.proj.weight");
        }
        int depth = ConfigInference.CountBlocks(w, "norm1.weight");
        bool cls = w.ContainsKey("cls_token"), dist = w.ContainsKey("dist_token");
        int reg = w.ContainsKey("reg_token") ? ConfigInference.Shape(w, "reg_token", file, 3)[1] : 0;
        int prefix = (cls ? 1 : 0) + (dist ? 1 : 0) + reg;
        var pos = ConfigInference.Shape(w, "pos_embed", file, 3);
        // timm's no_embed_class models (DeiT III, DINOv2 with registers) keep no position for the prefix tokens.
        bool noEmbedClass = prefix > 0 && !ConfigInference.IsSquare(pos[1] - prefix) && ConfigInference.IsSquare(pos[1]);
        int grid = ConfigInference.Grid(pos[1] - (noEmbedClass ? 0 : prefix), file);
        bool fcNorm = w.ContainsKey("fc_norm.weight"), map = w.ContainsKey("attn_pool.latent"), seq = w.ContainsKey(SeqPool.Prefix + ".weight");
        int inner = depth > 0 ? ConfigInference.Shape(w, "blocks.0.attn.qkv.weight", file, 2)[0] / 3 : d;
        bool qkNorm = w.ContainsKey("blocks.0.attn.q_norm.weight");
        // With qk_norm the norm's width is the head width, which fixes the head count.
        int? normHeads = qkNorm && ConfigInference.Shape(w, "blocks.0.attn.q_norm.weight", file, 1)[0] is var hd && hd > 0 && inner % hd == 0 ? inner / hd : null;
        int? hintedDimHead = (int?)hint?["dim_head"];
        int h = heads ?? normHeads ?? (int?)hint?["num_heads"]
            ?? (hintedDimHead is int dh && dh > 0 ? (inner % dh == 0 ? inner / dh
                : throw new CheckpointException(file, $"attention width {inner} is not a multiple of the head width {dh}: pass --heads")) : (int?)null)
            ?? ConfigInference.DefaultHeads(inner, file);
        if (inner % h != 0) throw new CheckpointException(file, $"attention width {inner} is not divisible by {h} heads", "blocks.0.attn.qkv.weight");
        Pooling pool;
        Activation act;
        try
        {
            pool = ((string?)hint?["global_pool"]) is { } named ? VitConfig.ParsePool(named)!.Value
                : map ? Pooling.Map : seq && !fcNorm ? Pooling.Seq : fcNorm || !cls ? Pooling.Avg : Pooling.Token;
            act = ConfigInference.Gelu(hint);
        }
        catch (VitSharpException e) when (e is not CheckpointException) { throw new CheckpointException(file, e.Message, inner: e); }
        return new VitConfig
        {
            ImageSize = grid * p, PatchSize = p, InChannels = c, EmbedDim = d, Depth = depth,
            NumHeads = h,
            DimHead = inner != d ? inner / h : 0,
            MlpDim = depth > 0 ? ConfigInference.Shape(w, "blocks.0.mlp.fc1.weight", file, 2)[0] : 4 * d,
            QkvBias = depth == 0 || w.ContainsKey("blocks.0.attn.qkv.bias"),
            ProjBias = depth == 0 || w.ContainsKey("blocks.0.attn.proj.bias"),
            QkNorm = qkNorm,
            LayerScale = w.ContainsKey("blocks.0.ls1.gamma"),
            ClassToken = cls,
            DistToken = dist,
            RegTokens = reg,
            NoEmbedClass = noEmbedClass,
            PreNorm = w.ContainsKey("norm_pre.weight"),
            ConvTokenizer = convTokenizer,
            PixelNorm = w.ContainsKey("patch_embed.pixel_norm.weight"),
            PatchEmbedNorm = w.ContainsKey("patch_embed.norm.weight"),
            DynamicImgSize = (bool?)hint?["dynamic_img_size"] ?? false,
            Pool = pool,
            FcNorm = fcNorm,
            RepresentationSize = w.ContainsKey("pre_logits.fc.weight") ? ConfigInference.Shape(w, "pre_logits.fc.weight", file, 2)[0] : 0,
            NumClasses = w.ContainsKey("head.weight") ? ConfigInference.Shape(w, "head.weight", file, 2)[0] : 0,
            LayerNormEps = ConfigInference.Eps(hint),
            Gelu = act,
        };
    }

    /// <summary>CCT's tokenizer read back from its weights (tokenizer.conv_layers.{i}.0.weight, 3×3, each layer's input the
    /// previous one's output), or null when there is none.</summary>
    private static ConvTokenizerConfig? InferConvTokenizer(IReadOnlyDictionary<string, HostArray> w, string file)
    {
        int layers = 0;
        while (w.ContainsKey(ConvTokenizer.WeightName(layers))) layers++;
        if (layers == 0) return null;
        if (w.ContainsKey("patch_embed.proj.weight"))
            throw new CheckpointException(file, "both a patch projection and a convolutional tokenizer", ConvTokenizer.WeightName(0));
        int channels = 0;
        for (int i = 0; i < layers; i++)
        {
            var s = ConfigInference.Shape(w, ConvTokenizer.WeightName(i), file, 4);
            if (s[2] != 3 || s[3] != 3) throw new CheckpointException(file, $"a {s[2]}×{s[3]} tokenizer kernel: only 3×3 is supported", ConvTokenizer.WeightName(i));
            if (i > 0 && s[1] != channels)
                throw new CheckpointException(file, $"takes {s[1]} channels, but the layer before gives {channels}", ConvTokenizer.WeightName(i));
            if (i < layers - 1) channels = s[0];
        }
        var ct = new ConvTokenizerConfig { Layers = layers, Channels = layers > 1 ? channels : 64 };
        try { ct.Validate(); }
        catch (VitSharpException e) { throw new CheckpointException(file, e.Message, inner: e); }
        return ct;
    }

    public override ModelOutput Forward(Pass p, Tensor images)
    {
        var c = Config;
        int b = images.Dim(0), gh = images.Dim(2) / c.PatchSize, gw = images.Dim(3) / c.PatchSize;
        int t = c.PrefixTokens + gh * gw, d = c.EmbedDim;
        var pos = PositionsFor(p, gh, gw);
        var patches = _tokenizer?.Forward(p, images) ?? _patchEmbed!.Forward(p, images);
        // timm: the final norm is Identity when fc_norm is used, so the residual stream is the tokens output.
        var stream = _norm is null ? p.Output(b, t, d) : p.Get(b, t, d);
        var x = _normPre is null ? _embed.Forward(p, patches, stream, pos) : _normPre.Forward(p, _embed.Forward(p, patches, null, pos), stream);
        for (int l = 0; l < _blocks.Length; l++) x = _blocks[l].Forward(p, x, p.DropPathAt(l, _blocks.Length));
        var tokens = _norm is null ? x : _norm.Forward(p, x, p.Output(b, t, d));

        var pooled = p.Output(b, c.FeatureDim);
        Tensor? logits = null;
        if (c.DistToken)
        {
            // timm's VisionTransformerDistilled at inference: features and logits are the means of the two tokens' own;
            // in distilled training (Pass.SeparateHeads) the two heads' logits come back apart, as timm's tuple.
            var cls = _pool.Forward(p, tokens);
            var dist = p.Get(b, d);
            p.Be.SelectToken(tokens, 1, dist);
            p.Be.Add(cls, dist, pooled);
            p.Be.ScaleInto(pooled, 0.5f, pooled);
            Tensor? distLogits = null;
            if (_head is not null)
            {
                logits = _head.Forward(p, cls, p.Output(b, c.NumClasses));
                if (p.Training && p.SeparateHeads) distLogits = _headDist!.Forward(p, dist, p.Output(b, c.NumClasses));
                else
                {
                    _headDist!.Forward(p, dist, logits, accumulate: true);
                    p.Be.ScaleInto(logits, 0.5f, logits);
                }
            }
            return new ModelOutput { Tokens = tokens, Pooled = pooled, Logits = logits, DistLogits = distLogits, AttentionProbs = p.CapturedProbs };
        }
        bool direct = _fcNorm is null && _preLogits is null;
        var feat = _attnPool is not null ? _attnPool.Forward(p, tokens, direct ? pooled : null)
            : _seqPool is not null ? _seqPool.Forward(p, tokens, direct ? pooled : null)
            : _pool.Forward(p, tokens, direct ? pooled : null);
        if (_fcNorm is not null) feat = _fcNorm.Forward(p, feat, _preLogits is null ? pooled : null);
        _preLogits?.Forward(p, feat, pooled, Activation.Tanh);

        logits = _head?.Forward(p, pooled, p.Output(b, c.NumClasses));
        return new ModelOutput { Tokens = tokens, Pooled = pooled, Logits = logits, AttentionProbs = p.CapturedProbs };
    }

    /// <summary>The position embedding for a gh×gw grid: null (the parameter itself) at the model's own grid; with
    /// dynamic_img_size, the parameter resampled as timm does at run time (prefix rows kept), cached per grid.</summary>
    private Tensor? PositionsFor(Pass p, int gh, int gw)
    {
        var c = Config;
        if (p.Training) DropPositionCache(); // the weights are about to change
        if (gh == c.GridSize && gw == c.GridSize) return null;
        if (!c.DynamicImgSize)
            throw new InputException($"a {gh}×{gw} patch grid, but the model runs {c.GridSize}×{c.GridSize} (load it with dynamic_img_size, or --img-size)");
        if (p.Training) throw new NotSupportedException("training runs at the model's own image size; dynamic_img_size is for inference");
        lock (_posCache)
        {
            if (_posCache.TryGetValue((gh, gw), out var cached)) return cached;
            var host = new float[_embed.Pos.Length];
            Backend.CopyToHost(_embed.Pos, host);
            var resampled = PositionEmbedding.Resample(new HostArray(_embed.Pos.Shape, host), c.PrefixTokens,
                (c.GridSize, c.GridSize), (gh, gw), Data.Transforms.Interpolation.Bicubic);
            var t = Backend.Allocate(resampled.Shape, Backend.ComputeType);
            Backend.CopyFromHost(resampled.Data, t);
            return _posCache[(gh, gw)] = t;
        }
    }

    private void DropPositionCache()
    {
        lock (_posCache)
        {
            foreach (var t in _posCache.Values) t.Dispose();
            _posCache.Clear();
        }
    }

    protected override void WeightsChanged() => DropPositionCache();

    public override void CheckInput(int[] shape)
    {
        var c = Config;
        if (!c.DynamicImgSize) { base.CheckInput(shape); return; }
        if (shape.Length != 4 || shape[1] != c.InChannels || shape[2] <= 0 || shape[3] <= 0 || shape[2] % c.PatchSize != 0 || shape[3] % c.PatchSize != 0)
            throw new InputException($"input has shape {Shape.Format(shape)} but the model takes (B,{c.InChannels},H,W) with H and W multiples of the patch {c.PatchSize}");
        if (shape[0] <= 0) throw new InputException("input batch is empty");
    }

    public override void Backward(Pass p, Tensor dlogits) => Backward(p, dlogits, null);

    /// <summary>dlogits: the gradient of the logits the forward returned (the mean of the two heads, or with
    /// <see cref="Pass.SeparateHeads"/> the class head's, with <paramref name="dDistLogits"/> the distillation head's).</summary>
    public override void Backward(Pass p, Tensor dlogits, Tensor? dDistLogits)
    {
        var c = Config;
        bool separate = c.DistToken && p.SeparateHeads;
        if (separate != dDistLogits is not null)
            throw new InvalidOperationException(separate
                ? "this pass returned both heads' logits (separate heads): the backward needs the distillation head's gradient too"
                : "a distillation head's gradient for a pass that returned one set of logits");
        int b = dlogits.Dim(0), t = c.NumTokens, d = c.EmbedDim;
        var dx = p.Get(b, t, d);
        var dTokens = _norm is null ? dx : p.Get(b, t, d);
        if (c.DistToken)
        {
            // The mean of the heads sends half of dlogits into each; separate heads get their own gradients.
            Tensor dlCls = dlogits, dlDist = dDistLogits ?? dlogits;
            if (!separate)
            {
                dlCls = dlDist = p.Get(dlogits.Shape);
                p.Be.ScaleInto(dlogits, 0.5f, dlCls);
            }
            var dCls = p.Get(b, d);
            var dDist = p.Get(b, d);
            _head!.Backward(p, dlCls, dCls);
            _headDist!.Backward(p, dlDist, dDist);
            _pool.Backward(p, dCls, dTokens);
            var dOther = p.Get(b, t, d);
            p.Tb.SelectTokenBackward(dDist, 1, dOther);
            p.Be.Add(dTokens, dOther, dTokens);
        }
        else
        {
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
            if (_attnPool is not null) _attnPool.Backward(p, dFeat, dTokens);
            else if (_seqPool is not null) _seqPool.Backward(p, dFeat, dTokens);
            else _pool.Backward(p, dFeat, dTokens);
        }
        // The final norm: into the residual stream's gradient, which every block then updates in place.
        if (_norm is not null) _norm.Backward(p, dTokens, dx);
        for (int l = _blocks.Length - 1; l >= 0; l--) _blocks[l].Backward(p, dx);
        if (_normPre is not null)
        {
            var dEmbed = p.Get(b, t, d);
            _normPre.Backward(p, dx, dEmbed);
            dx = dEmbed;
        }
        var dPatches = p.Get(b, c.NumPatches, d);
        _embed.Backward(p, dx, dPatches);
        if (_tokenizer is not null) _tokenizer.Backward(p, dPatches);
        else _patchEmbed!.Backward(p, dPatches);
    }
}

/// <summary>Pre-LN Transformer encoder block: x += drop_path(ls1(attn(norm1(x)))); x += drop_path(ls2(mlp(norm2(x)))),
/// the layer scales (ls1, ls2) optional.</summary>
public sealed class Block(LayerNorm norm1, Attention attn, LayerNorm norm2, Mlp mlp, LayerScale? ls1 = null, LayerScale? ls2 = null)
{
    public LayerNorm Norm1 { get; } = norm1;
    public Attention Attn { get; } = attn;
    public LayerNorm Norm2 { get; } = norm2;
    public Mlp Mlp { get; } = mlp;
    public LayerScale? Ls1 { get; } = ls1;
    public LayerScale? Ls2 { get; } = ls2;
    private readonly Residual _attnResidual = new(), _mlpResidual = new();

    /// <summary>The block at <paramref name="prefix"/>; <paramref name="causal"/>: a text tower's (token i sees 0…i).</summary>
    public static Block From(ParameterSet p, string prefix, VitConfig c, bool causal = false) => new(
        LayerNorm.From(p, prefix + ".norm1", c.LayerNormEps),
        Attention.From(p, prefix + ".attn", c.NumHeads, c.QkvBias, c.ProjBias, c.QkNorm, c.LayerNormEps, causal),
        LayerNorm.From(p, prefix + ".norm2", c.LayerNormEps),
        Mlp.From(p, prefix + ".mlp", c.Gelu),
        c.LayerScale ? LayerScale.From(p, prefix + ".ls1") : null,
        c.LayerScale ? LayerScale.From(p, prefix + ".ls2") : null);

    public static IEnumerable<(string, int[])> Layout(string prefix, VitConfig c)
    {
        var l = LayerNorm.Layout(prefix + ".norm1", c.EmbedDim)
            .Concat(Attention.Layout(prefix + ".attn", c.EmbedDim, c.QkvBias, c.InnerDim, c.NumHeads, c.ProjBias, c.QkNorm));
        if (c.LayerScale) l = l.Concat(LayerScale.Layout(prefix + ".ls1", c.EmbedDim));
        l = l.Concat(LayerNorm.Layout(prefix + ".norm2", c.EmbedDim)).Concat(Mlp.Layout(prefix + ".mlp", c.EmbedDim, c.MlpDim));
        if (c.LayerScale) l = l.Concat(LayerScale.Layout(prefix + ".ls2", c.EmbedDim));
        return l;
    }

    /// <summary>Returns the new residual stream: x itself, updated in place, in inference; a new tensor in training.</summary>
    public Tensor Forward(Pass p, Tensor x, float dropPath)
    {
        // With a layer scale the branch cannot add itself into x: it is scaled first, then added.
        using (p.Scope())
            x = _attnResidual.Forward(p, x, Ls1 is null ? Attn.Forward(p, Norm1.Forward(p, x), Residual.Into(p, x))
                : Ls1.Forward(p, Attn.Forward(p, Norm1.Forward(p, x))), dropPath);
        using (p.Scope())
            x = _mlpResidual.Forward(p, x, Ls2 is null ? Mlp.Forward(p, Norm2.Forward(p, x), Residual.Into(p, x))
                : Ls2.Forward(p, Mlp.Forward(p, Norm2.Forward(p, x))), dropPath);
        return x;
    }

    /// <summary>dx: the gradient of the block's output on entry, of its input on return (each norm adds its branch's share).</summary>
    public void Backward(Pass p, Tensor dx)
    {
        using (p.Scope())
        {
            var dh = p.Get(dx.Shape);
            var dBranch = _mlpResidual.Backward(p, dx);
            if (Ls2 is not null) dBranch = Ls2.Backward(p, dBranch);
            Mlp.Backward(p, dBranch, dh);
            Norm2.Backward(p, dh, dx, accumulateDx: true);
        }
        using (p.Scope())
        {
            var dh = p.Get(dx.Shape);
            var dBranch = _attnResidual.Backward(p, dx);
            if (Ls1 is not null) dBranch = Ls1.Backward(p, dBranch);
            Attn.Backward(p, dBranch, dh);
            Norm1.Backward(p, dh, dx, accumulateDx: true);
        }
    }
}
