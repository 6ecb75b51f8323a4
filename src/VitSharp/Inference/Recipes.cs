using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Data.Transforms;

namespace VitSharp.Inference;

/// <summary>
/// The preprocessing that fits a checkpoint: the recipe its <see cref="ModelMetadata"/> states (every file VitSharp
/// writes), else what its authors state (timm's pretrained_cfg, Hugging Face's preprocessor_config.json), else the
/// convention of its format — Google: resize to a square, [−1, 1]; Hugging Face: PIL bilinear to a square, [−1, 1];
/// timm: bicubic, crop_pct 0.875, ImageNet mean/std. Always at the size the model runs at.
/// </summary>
public static class Recipes
{
    public static PreprocessRecipe For(Checkpoint ckpt)
    {
        int size = ckpt.Config.ImageSize;
        if (ckpt.Metadata?.Preprocess is { } stated) return stated with { ImageSize = size };
        if (ckpt.PreprocessHints is JsonObject h)
        {
            if (ckpt.Format == "timm-folder") return FromTimm(h, size);
            if (ckpt.Format.StartsWith("huggingface", StringComparison.Ordinal)) return FromHuggingFace(h, size);
        }
        if (ckpt.Format.StartsWith("google", StringComparison.Ordinal)) return PreprocessRecipe.Google(size);
        if (ckpt.Format.StartsWith("huggingface", StringComparison.Ordinal)) return PreprocessRecipe.HuggingFace(size);
        return PreprocessRecipe.Timm(size);
    }

    /// <summary>What a model loaded from this checkpoint is, as every command uses it: its config, the preprocessing
    /// (<paramref name="recipe"/> if given, else <see cref="For"/>) at the model's size, and the class names
    /// (<paramref name="labels"/> if given, else the checkpoint's, else ImageNet's for 1000 classes).</summary>
    public static ModelMetadata Resolve(Checkpoint ckpt, PreprocessRecipe? recipe = null, string[]? labels = null)
    {
        labels ??= DefaultLabels(ckpt);
        if (labels is not null && labels.Length != ckpt.Config.NumClasses && ckpt.Config.NumClasses > 0)
            throw new VitSharpException($"{labels.Length} labels for a model with {ckpt.Config.NumClasses} classes");
        return new ModelMetadata
        {
            Config = ckpt.Config,
            Preprocess = (recipe ?? For(ckpt)) with { ImageSize = ckpt.Config.ImageSize },
            Labels = labels,
        };
    }

    /// <summary>The class names used when none are given: the checkpoint's own, else ImageNet's 1000 for a 1000-class
    /// model, else none.</summary>
    public static string[]? DefaultLabels(Checkpoint ckpt) =>
        ckpt.Labels ?? (ckpt.Config.NumClasses == 1000 ? Inference.Labels.ImageNet : null);

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
        // CLIPImageProcessor: the shorter side resized to size.shortest_edge, then a crop_size centre crop.
        if (cfg["size"] is JsonObject sz && sz["shortest_edge"] is JsonValue se && se.TryGetValue<int>(out var edge) && edge > 0)
        {
            int crop = cfg["crop_size"] is JsonObject cs && cs["height"] is JsonValue ch && ch.TryGetValue<int>(out var h) ? h : edge;
            r = r with { Resize = ResizeMode.ShorterSideThenCenterCrop, CropPct = Math.Min(1.0, (double)crop / edge) };
        }
        return r;
    }

    private static float[]? Floats(JsonNode? n) =>
        n is JsonArray a && a.Count == 3 ? a.Select(x => (float)(double)x!).ToArray() : null;
}
