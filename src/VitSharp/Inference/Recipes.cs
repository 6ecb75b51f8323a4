using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Data.Transforms;

namespace VitSharp.Inference;

/// <summary>
/// The preprocessing that fits a checkpoint: what its authors state (timm's pretrained_cfg, Hugging Face's
/// preprocessor_config.json, a recipe VitSharp saved), else the convention of its format — Google: resize to a square,
/// [−1, 1]; Hugging Face: PIL bilinear to a square, [−1, 1]; timm: bicubic, crop_pct 0.875, ImageNet mean/std.
/// </summary>
public static class Recipes
{
    public const string MetadataKey = "vitsharp.preprocess";

    public static PreprocessRecipe For(Checkpoint ckpt)
    {
        int size = ckpt.Config.ImageSize;
        if (ckpt.PreprocessHints is JsonObject h)
        {
            if (h["vitsharp_recipe"] is JsonValue saved) return PreprocessRecipe.Parse((string)saved!) with { ImageSize = size };
            if (ckpt.Format == "timm-folder") return FromTimm(h, size);
            if (ckpt.Format.StartsWith("huggingface", StringComparison.Ordinal)) return FromHuggingFace(h, size);
        }
        if (ckpt.Format.StartsWith("google", StringComparison.Ordinal)) return PreprocessRecipe.Google(size);
        if (ckpt.Format.StartsWith("huggingface", StringComparison.Ordinal)) return PreprocessRecipe.HuggingFace(size);
        return PreprocessRecipe.Timm(size);
    }

    private static PreprocessRecipe FromTimm(JsonObject cfg, int size)
    {
        var r = PreprocessRecipe.Timm(size, (double?)cfg["crop_pct"] ?? 0.875,
            (string?)cfg["interpolation"] == "bilinear" ? Interpolation.Bilinear : Interpolation.Bicubic);
        if (Floats(cfg["mean"]) is { } mean) r = r with { Mean = mean };
        if (Floats(cfg["std"]) is { } std) r = r with { Std = std };
        if ((string?)cfg["crop_mode"] == "squash") r = r with { Resize = ResizeMode.Square };
        return r;
    }

    // ViTImageProcessor: resize to size×size with PIL (resample 2 = bilinear, 3 = bicubic), rescale, normalise.
    private static PreprocessRecipe FromHuggingFace(JsonObject cfg, int size)
    {
        var r = PreprocessRecipe.HuggingFace(size);
        if ((int?)cfg["resample"] == 3) r = r with { Interpolation = Interpolation.Bicubic };
        if (Floats(cfg["image_mean"]) is { } mean) r = r with { Mean = mean };
        if (Floats(cfg["image_std"]) is { } std) r = r with { Std = std };
        return r;
    }

    private static float[]? Floats(JsonNode? n) =>
        n is JsonArray a && a.Count == 3 ? a.Select(x => (float)(double)x!).ToArray() : null;
}
