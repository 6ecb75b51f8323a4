namespace VitSharp.Models;

/// <summary>
/// What a configuration costs: its parameter count and the FLOPs of one image's forward pass. The one FLOP formula of
/// the project (vit bench, vit presets and bench/ use it): matrix products and attention, 2 FLOPs per multiply-add;
/// norms, activations, softmax and additions are left out (as fvcore's and timm's GMAC counts leave them out, so a
/// figure here is 2 × their GMACs).
/// </summary>
public static class ModelCost
{
    /// <summary>The number of weights (every tensor of the model's layout).</summary>
    public static long Parameters(ModelConfig config)
    {
        var layout = config switch
        {
            VitConfig v => VisionTransformer.Layout(v),
            MixerConfig m => MlpMixer.Layout(m),
            _ => throw new ArgumentException($"unknown configuration {config.GetType().Name}"),
        };
        return layout.Sum(l => Tensors.Shape.Count(l.Item2));
    }

    /// <summary>FLOPs of one image's forward at the configuration's resolution.</summary>
    public static double ForwardFlops(ModelConfig config)
    {
        double p = config.NumPatches, d = config.EmbedDim;
        double patch = 2.0 * p * d * config.InChannels * config.PatchSize * config.PatchSize;
        if (config is VitConfig { ConvTokenizer: { } ct })
        {
            // CCT's tokenizer: each 3×3 convolution at its layer's full resolution (the pools halve it after).
            patch = 0;
            double side = config.ImageSize;
            for (int i = 0; i < ct.Layers; i++)
            {
                var (cout, cin) = ct.LayerChannels(i, config.InChannels, config.EmbedDim);
                patch += 2.0 * side * side * cout * cin * 9;
                side = Backends.HostOps.PooledSize((int)side);
            }
        }
        double head = 2.0 * d * config.NumClasses;
        // CCT's SeqPool: a score per token (2d) and the weighted sum (2d per token).
        if (config is VitConfig { Pool: Pooling.Seq } sv) head += 4.0 * sv.NumTokens * d;
        double block = config switch
        {
            // qkv (3d²) and projection (d²) and the MLP (2·d·mlp) per token; QKᵀ and attention·V (2·t²·d each).
            VitConfig v => 2 * (double)v.NumTokens * d * (4 * d + 2.0 * v.MlpDim) + 4 * (double)v.NumTokens * v.NumTokens * d,
            // token mixing: per channel, patches → token_mlp → patches; channel mixing: per patch, d → channel_mlp → d.
            MixerConfig m => 4 * p * m.TokenMlpDim * d + 4 * p * d * m.ChannelMlpDim,
            _ => throw new ArgumentException($"unknown configuration {config.GetType().Name}"),
        };
        return patch + config.Depth * block + head;
    }
}
