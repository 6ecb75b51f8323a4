using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Models;

/// <summary>
/// MLP-Mixer: patch embedding ("stem"), blocks of token mixing (an MLP across patches, on the transposed sequence)
/// and channel mixing (an MLP across features), final norm, mean over patches, head. Names are timm's.
/// The one definition of the model: inference, training and ONNX export all run this forward.
/// </summary>
public sealed class MlpMixer : VisionModel
{
    private readonly PatchEmbed _stem;
    private readonly MixerBlock[] _blocks;
    private readonly LayerNorm _norm;
    private readonly TokenPool _pool = new(meanTokens: true, 0);
    private readonly Linear? _head;

    public MlpMixer(MixerConfig config, IBackend backend) : base(config, backend, Layout(config))
    {
        var p = Parameters;
        _stem = PatchEmbed.From(p, "stem.proj", config.PatchSize);
        _blocks = Enumerable.Range(0, config.Depth).Select(i => MixerBlock.From(p, $"blocks.{i}", config)).ToArray();
        _norm = LayerNorm.From(p, "norm", config.LayerNormEps);
        if (config.NumClasses > 0) _head = Linear.From(p, "head");
    }

    public new MixerConfig Config => (MixerConfig)base.Config;

    public static IEnumerable<(string, int[])> Layout(MixerConfig c)
    {
        foreach (var l in PatchEmbed.Layout("stem.proj", c.InChannels, c.EmbedDim, c.PatchSize)) yield return l;
        for (int i = 0; i < c.Depth; i++)
            foreach (var l in MixerBlock.Layout($"blocks.{i}", c)) yield return l;
        foreach (var l in LayerNorm.Layout("norm", c.EmbedDim)) yield return l;
        if (c.NumClasses > 0)
            foreach (var l in Linear.Layout("head", c.EmbedDim, c.NumClasses)) yield return l;
    }

    /// <summary>The inverse of <see cref="Layout"/>: the configuration whose layout these (timm-named) weights have
    /// (eps and GELU variant from the hint, else timm's defaults).</summary>
    public static MixerConfig InferConfig(IReadOnlyDictionary<string, HostArray> w, string file, JsonObject? hint)
    {
        var pe = ConfigInference.Shape(w, "stem.proj.weight", file, 4);
        int depth = ConfigInference.CountBlocks(w, "norm1.weight");
        if (depth == 0) throw new CheckpointException(file, "Mixer checkpoint without blocks", "blocks.0.norm1.weight");
        var tok = ConfigInference.Shape(w, "blocks.0.mlp_tokens.fc1.weight", file, 2);
        int grid = ConfigInference.Grid(tok[1], file);
        return new MixerConfig
        {
            ImageSize = grid * pe[2], PatchSize = pe[2], InChannels = pe[1], EmbedDim = pe[0], Depth = depth,
            TokenMlpDim = tok[0],
            ChannelMlpDim = ConfigInference.Shape(w, "blocks.0.mlp_channels.fc1.weight", file, 2)[0],
            NumClasses = w.ContainsKey("head.weight") ? ConfigInference.Shape(w, "head.weight", file, 2)[0] : 0,
            LayerNormEps = ConfigInference.Eps(hint),
            Gelu = ConfigInference.Gelu(hint),
        };
    }

    public override ModelOutput Forward(Pass p, Tensor images)
    {
        var c = Config;
        int b = images.Dim(0), n = c.NumPatches, d = c.EmbedDim;
        var x = _stem.Forward(p, images);
        for (int l = 0; l < _blocks.Length; l++) x = _blocks[l].Forward(p, x, p.DropPathAt(l, _blocks.Length));
        var tokens = _norm.Forward(p, x, p.Output(b, n, d));
        var pooled = _pool.Forward(p, tokens, p.Output(b, d));
        var logits = _head?.Forward(p, pooled, p.Output(b, c.NumClasses));
        return new ModelOutput { Tokens = tokens, Pooled = pooled, Logits = logits };
    }

    public override void Backward(Pass p, Tensor dlogits)
    {
        var c = Config;
        int b = dlogits.Dim(0), n = c.NumPatches, d = c.EmbedDim;
        var dPooled = p.Get(b, d);
        _head!.Backward(p, dlogits, dPooled);
        var dTokens = p.Get(b, n, d);
        _pool.Backward(p, dPooled, dTokens);
        var dx = p.Get(b, n, d);
        _norm.Backward(p, dTokens, dx);
        for (int l = _blocks.Length - 1; l >= 0; l--) _blocks[l].Backward(p, dx);
        _stem.Backward(p, dx);
    }
}

/// <summary>x += drop_path(Tᵀ(mlp_tokens(T(norm1(x))))); x += drop_path(mlp_channels(norm2(x))), where T swaps patches and channels.</summary>
public sealed class MixerBlock(LayerNorm norm1, TokenMixing tokens, LayerNorm norm2, Mlp channels)
{
    public LayerNorm Norm1 { get; } = norm1;
    public TokenMixing Tokens { get; } = tokens;
    public LayerNorm Norm2 { get; } = norm2;
    public Mlp Channels { get; } = channels;
    private readonly Residual _tokenResidual = new(), _channelResidual = new();

    public static MixerBlock From(ParameterSet p, string prefix, MixerConfig c) => new(
        LayerNorm.From(p, prefix + ".norm1", c.LayerNormEps),
        new TokenMixing(Mlp.From(p, prefix + ".mlp_tokens", c.Gelu)),
        LayerNorm.From(p, prefix + ".norm2", c.LayerNormEps),
        Mlp.From(p, prefix + ".mlp_channels", c.Gelu));

    public static IEnumerable<(string, int[])> Layout(string prefix, MixerConfig c) =>
        LayerNorm.Layout(prefix + ".norm1", c.EmbedDim)
            .Concat(Mlp.Layout(prefix + ".mlp_tokens", c.NumPatches, c.TokenMlpDim))
            .Concat(LayerNorm.Layout(prefix + ".norm2", c.EmbedDim))
            .Concat(Mlp.Layout(prefix + ".mlp_channels", c.EmbedDim, c.ChannelMlpDim));

    /// <summary>Returns the new residual stream: x itself, updated in place, in inference; a new tensor in training.</summary>
    public Tensor Forward(Pass p, Tensor x, float dropPath)
    {
        using (p.Scope()) x = _tokenResidual.Forward(p, x, Tokens.Forward(p, Norm1.Forward(p, x)), dropPath);
        using (p.Scope()) x = _channelResidual.Forward(p, x, Channels.Forward(p, Norm2.Forward(p, x), Residual.Into(p, x)), dropPath);
        return x;
    }

    public void Backward(Pass p, Tensor dx)
    {
        using (p.Scope())
        {
            var dh = p.Get(dx.Shape);
            Channels.Backward(p, _channelResidual.Backward(p, dx), dh);
            Norm2.Backward(p, dh, dx, accumulateDx: true);
        }
        using (p.Scope())
        {
            var dh = p.Get(dx.Shape);
            Tokens.Backward(p, _tokenResidual.Backward(p, dx), dh);
            Norm1.Backward(p, dh, dx, accumulateDx: true);
        }
    }
}
