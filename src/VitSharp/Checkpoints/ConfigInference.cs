using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Data.Transforms;
using VitSharp.Models;

namespace VitSharp.Checkpoints;

/// <summary>Options that override or complete what a checkpoint says about its model.</summary>
public sealed record LoadOptions
{
    /// <summary>Attention heads; default: config.json, Google's per-head kernels, our metadata, else width/64.</summary>
    public int? Heads { get; init; }
    /// <summary>Run at this image size: position embeddings are resampled to the new grid.</summary>
    public int? ImageSize { get; init; }
    public Pooling? Pool { get; init; }
    public Activation? Gelu { get; init; }
    public float? LayerNormEps { get; init; }
    public Interpolation PosEmbedInterpolation { get; init; } = Interpolation.Bicubic;
}

/// <summary>
/// Works out a model configuration from canonical (timm-named) tensors: widths, depth and patch from the shapes,
/// pooling from which norms exist. What shapes cannot say (heads, eps, GELU variant) comes from a config or defaults:
/// heads = width/64, LayerNorm eps 1e-6 and exact GELU (timm's defaults).
/// </summary>
public static class ConfigInference
{
    public static ModelConfig Infer(IReadOnlyDictionary<string, HostArray> w, string file, JsonObject? hint, int? heads)
    {
        if (w.ContainsKey("stem.proj.weight")) return InferMixer(w, file, hint);
        if (!w.ContainsKey("patch_embed.proj.weight"))
            throw new CheckpointException(file, "no patch embedding ('patch_embed.proj.weight' or 'stem.proj.weight'): not a ViT or Mixer checkpoint");
        var pe = Shape(w, "patch_embed.proj.weight", file, 4);
        int d = pe[0], c = pe[1], p = pe[2];
        if (pe[3] != p) throw new CheckpointException(file, $"non-square patches {p}×{pe[3]} are not supported", "patch_embed.proj.weight");
        int depth = CountBlocks(w, "norm1.weight");
        bool cls = w.ContainsKey("cls_token");
        var pos = Shape(w, "pos_embed", file, 3);
        // timm's no_embed_class models (e.g. DeiT III) keep no position for the class token.
        bool noEmbedClass = cls && !IsSquare(pos[1] - 1) && IsSquare(pos[1]);
        int grid = Grid(pos[1] - (cls && !noEmbedClass ? 1 : 0), file);
        bool fcNorm = w.ContainsKey("fc_norm.weight");
        int headsValue = heads ?? (int?)hint?["num_heads"] ?? DefaultHeads(d, file);
        return new VitConfig
        {
            ImageSize = grid * p, PatchSize = p, InChannels = c, EmbedDim = d, Depth = depth,
            NumHeads = headsValue,
            MlpDim = depth > 0 ? Shape(w, "blocks.0.mlp.fc1.weight", file, 2)[0] : 4 * d,
            QkvBias = depth == 0 || w.ContainsKey("blocks.0.attn.qkv.bias"),
            ClassToken = cls,
            NoEmbedClass = noEmbedClass,
            Pool = fcNorm || !cls ? Pooling.Avg : Pooling.Token,
            FcNorm = fcNorm,
            RepresentationSize = w.ContainsKey("pre_logits.fc.weight") ? Shape(w, "pre_logits.fc.weight", file, 2)[0] : 0,
            NumClasses = w.ContainsKey("head.weight") ? Shape(w, "head.weight", file, 2)[0] : 0,
            LayerNormEps = (float?)(double?)hint?["layer_norm_eps"] ?? 1e-6f,
            Gelu = ParseGelu((string?)hint?["gelu"]) ?? Activation.Gelu,
        };
    }

    private static ModelConfig InferMixer(IReadOnlyDictionary<string, HostArray> w, string file, JsonObject? hint)
    {
        var pe = Shape(w, "stem.proj.weight", file, 4);
        int depth = CountBlocks(w, "norm1.weight");
        if (depth == 0) throw new CheckpointException(file, "Mixer checkpoint without blocks", "blocks.0.norm1.weight");
        var tok = Shape(w, "blocks.0.mlp_tokens.fc1.weight", file, 2);
        int grid = Grid(tok[1], file);
        return new MixerConfig
        {
            ImageSize = grid * pe[2], PatchSize = pe[2], InChannels = pe[1], EmbedDim = pe[0], Depth = depth,
            TokenMlpDim = tok[0],
            ChannelMlpDim = Shape(w, "blocks.0.mlp_channels.fc1.weight", file, 2)[0],
            NumClasses = w.ContainsKey("head.weight") ? Shape(w, "head.weight", file, 2)[0] : 0,
            LayerNormEps = (float?)(double?)hint?["layer_norm_eps"] ?? 1e-6f,
            Gelu = ParseGelu((string?)hint?["gelu"]) ?? Activation.Gelu,
        };
    }

    public static Activation? ParseGelu(string? s) => s switch
    {
        null => null,
        "erf" or "gelu" or "exact" => Activation.Gelu,
        "tanh" or "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => Activation.GeluTanh,
        _ => throw new VitSharpException($"unknown GELU variant '{s}' (expected erf or tanh)"),
    };

    private static int DefaultHeads(int d, string file) =>
        d % 64 == 0 ? d / 64
            : throw new CheckpointException(file, $"cannot infer the number of heads for width {d} (not a multiple of 64): pass --heads");

    private static int CountBlocks(IReadOnlyDictionary<string, HostArray> w, string leaf)
    {
        int n = 0;
        while (w.ContainsKey($"blocks.{n}.{leaf}")) n++;
        return n;
    }

    private static bool IsSquare(int n) => n > 0 && (int)Math.Round(Math.Sqrt(n)) is var g && g * g == n;

    private static int Grid(int tokens, string file)
    {
        int g = (int)Math.Round(Math.Sqrt(tokens));
        if (g * g != tokens || g == 0)
            throw new CheckpointException(file, $"{tokens} patch tokens do not form a square grid");
        return g;
    }

    private static int[] Shape(IReadOnlyDictionary<string, HostArray> w, string name, string file, int rank)
    {
        if (!w.TryGetValue(name, out var a)) throw new CheckpointException(file, "missing from the checkpoint", name);
        if (a.Shape.Length != rank) throw new CheckpointException(file, $"expected rank {rank}, found shape {a}", name);
        return a.Shape;
    }
}
