using VitSharp.Backends;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Models;

/// <summary>
/// MLP-Mixer: patch embedding ("stem"), blocks of token mixing (an MLP across patches, on the transposed sequence)
/// and channel mixing (an MLP across features), final norm, mean over patches, head. Names are timm's.
/// </summary>
public sealed class MlpMixer : VisionModel
{
    private readonly PatchEmbed _stem;
    private readonly MixerBlock[] _blocks;
    private readonly LayerNorm _norm;
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

    public override ModelOutput Forward(Tensor images, bool captureAttention = false)
    {
        var c = Config;
        var be = Backend;
        CheckInput(images.Shape);
        int b = images.Dim(0), n = c.NumPatches, d = c.EmbedDim;
        using var ws = new Workspace(be);
        var x = ws.Get(b, n, d);
        _stem.Forward(be, images, x);
        var s = new MixerBlock.Scratch(ws.Get(b, n, d), ws.Get(b, d, n), ws.Get(b, d, c.TokenMlpDim), ws.Get(b, d, n),
            ws.Get(b, n, d), ws.Get(b, n, c.ChannelMlpDim));
        foreach (var block in _blocks) block.Forward(be, x, s);

        var tokens = be.Allocate([b, n, d], be.ComputeType);
        _norm.Forward(be, x, tokens);
        var pooled = be.Allocate([b, d], be.ComputeType);
        be.MeanTokens(tokens, 0, pooled);
        Tensor? logits = null;
        if (_head is not null)
        {
            logits = be.Allocate([b, c.NumClasses], be.ComputeType);
            _head.Forward(be, pooled, logits);
        }
        return new ModelOutput { Tokens = tokens, Pooled = pooled, Logits = logits };
    }
}

/// <summary>x += Tᵀ(mlp_tokens(T(norm1(x)))); x += mlp_channels(norm2(x)), where T swaps patches and channels.</summary>
public sealed class MixerBlock(LayerNorm norm1, Mlp tokens, LayerNorm norm2, Mlp channels)
{
    public sealed record Scratch(Tensor Normed, Tensor Transposed, Tensor TokenHidden, Tensor TokenOut, Tensor Mixed, Tensor ChannelHidden);

    public static MixerBlock From(ParameterSet p, string prefix, MixerConfig c) => new(
        LayerNorm.From(p, prefix + ".norm1", c.LayerNormEps),
        Mlp.From(p, prefix + ".mlp_tokens", c.Gelu),
        LayerNorm.From(p, prefix + ".norm2", c.LayerNormEps),
        Mlp.From(p, prefix + ".mlp_channels", c.Gelu));

    public static IEnumerable<(string, int[])> Layout(string prefix, MixerConfig c) =>
        LayerNorm.Layout(prefix + ".norm1", c.EmbedDim)
            .Concat(Mlp.Layout(prefix + ".mlp_tokens", c.NumPatches, c.TokenMlpDim))
            .Concat(LayerNorm.Layout(prefix + ".norm2", c.EmbedDim))
            .Concat(Mlp.Layout(prefix + ".mlp_channels", c.EmbedDim, c.ChannelMlpDim));

    public void Forward(IBackend be, Tensor x, Scratch s)
    {
        norm1.Forward(be, x, s.Normed);
        be.Transpose12(s.Normed, s.Transposed);
        tokens.Forward(be, s.Transposed, s.TokenHidden, s.TokenOut, accumulate: false);
        be.Transpose12(s.TokenOut, s.Mixed);
        be.Add(x, s.Mixed, x);
        norm2.Forward(be, x, s.Normed);
        channels.Forward(be, s.Normed, s.ChannelHidden, x, accumulate: true);
    }
}
