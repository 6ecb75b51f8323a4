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
    /// <summary>Renames a checkpoint of another codebase to timm's names (<c>--name-map</c>); null: the shipped maps are
    /// tried on names VitSharp does not otherwise read.</summary>
    public NameMap? NameMap { get; init; }
    /// <summary>Each head's width (timm's dim_head) when it is not width/heads.</summary>
    public int? DimHead { get; init; }
    /// <summary>Run any input size the patch divides, position embeddings resampled per size (timm's dynamic_img_size).</summary>
    public bool? DynamicImgSize { get; init; }
    public Activation? Gelu { get; init; }
    public float? LayerNormEps { get; init; }
    public Interpolation PosEmbedInterpolation { get; init; } = Interpolation.Bicubic;
    /// <summary>Load weights holding NaN or ±Inf (refused by default, naming the tensor).</summary>
    public bool AllowNonFinite { get; init; }
    /// <summary>Budget of tensor bytes for this load (default: <see cref="CheckpointLimits.MaxTotalBytes"/>, 16 GiB or
    /// VITSHARP_MAX_CHECKPOINT_BYTES).</summary>
    public long? MaxTotalBytes { get; init; }
    /// <summary>Map a safetensors file instead of reading it (<see cref="MappedFile"/>): the weights are read from the
    /// file's pages when used, and an inference model packs them from there (<see cref="Models.VisionModel.LoadForInference"/>),
    /// so a process holds about one copy. The checkpoint then holds the mapping until it is disposed. Null: the
    /// caller decides (<see cref="Inference.Classifier.Load"/> maps, a plain <see cref="Checkpoint.Load"/> reads).</summary>
    public bool? MapWeights { get; init; }
}

/// <summary>
/// Works out a model configuration from canonical (timm-named) tensors: widths, depth and patch from the shapes,
/// pooling from which norms exist. What shapes cannot say (heads, eps, GELU variant) comes from a config or defaults:
/// heads = width/64, LayerNorm eps 1e-6 and exact GELU (timm's defaults).
/// </summary>
public static class ConfigInference
{
    /// <summary>Which architecture the weights are (by their patch embedding's name), then that model's own reading of
    /// its layout back from the shapes (<see cref="VisionTransformer.InferConfig"/>, <see cref="MlpMixer.InferConfig"/>).</summary>
    public static ModelConfig Infer(IReadOnlyDictionary<string, HostArray> w, string file, JsonObject? hint, int? heads)
    {
        if (w.ContainsKey("stem.proj.weight")) return MlpMixer.InferConfig(w, file, hint);
        if (!w.ContainsKey("patch_embed.proj.weight") && !w.ContainsKey(Nn.ConvTokenizer.WeightName(0)))
            throw new CheckpointException(file, $"no patch embedding ('patch_embed.proj.weight', '{Nn.ConvTokenizer.WeightName(0)}' or 'stem.proj.weight'): not a ViT or Mixer checkpoint");
        return VisionTransformer.InferConfig(w, file, hint, heads);
    }

    /// <summary>LayerNorm eps from a config hint, else timm's default 1e-6.</summary>
    internal static float Eps(JsonObject? hint) => (float?)(double?)hint?["layer_norm_eps"] ?? 1e-6f;

    /// <summary>The GELU variant from a config hint, else exact erf GELU.</summary>
    internal static Activation Gelu(JsonObject? hint) => ParseGelu((string?)hint?["gelu"]) ?? Activation.Gelu;

    public static Activation? ParseGelu(string? s) => ModelConfig.ParseActivation(s);

    internal static int DefaultHeads(int d, string file) =>
        d % 64 == 0 ? d / 64
            : throw new CheckpointException(file, $"cannot infer the number of heads for width {d} (not a multiple of 64): pass --heads");

    internal static int CountBlocks(IReadOnlyDictionary<string, HostArray> w, string leaf)
    {
        int n = 0;
        while (w.ContainsKey($"blocks.{n}.{leaf}")) n++;
        return n;
    }

    internal static bool IsSquare(int n) => n > 0 && (int)Math.Round(Math.Sqrt(n)) is var g && g * g == n;

    internal static int Grid(int tokens, string file)
    {
        int g = (int)Math.Round(Math.Sqrt(tokens));
        if (g * g != tokens || g == 0)
            throw new CheckpointException(file, $"{tokens} patch tokens do not form a square grid");
        return g;
    }

    internal static int[] Shape(IReadOnlyDictionary<string, HostArray> w, string name, string file, int rank)
    {
        if (!w.TryGetValue(name, out var a)) throw new CheckpointException(file, "missing from the checkpoint", name);
        if (a.Shape.Length != rank) throw new CheckpointException(file, $"expected rank {rank}, found shape {a}", name);
        return a.Shape;
    }
}
