using System.Text.Json;
using System.Text.Json.Serialization;
using VitSharp.Tensors;

namespace VitSharp.Data.Transforms;

/// <summary>How an image is brought to the model's resolution before normalisation.</summary>
public enum ResizeMode
{
    /// <summary>timm eval: resize the shorter side to floor(size / crop_pct), then centre-crop size×size.</summary>
    ShorterSideThenCenterCrop,
    /// <summary>Google and Hugging Face eval: resize straight to size×size (aspect ratio not kept).</summary>
    Square,
}

/// <summary>
/// A named, serialisable preprocessing recipe: how a decoded image becomes the float32 CHW input of a model.
/// Presets: <see cref="Timm"/> (bicubic, crop_pct 0.875, ImageNet mean/std), <see cref="Google"/> (bilinear without
/// antialias like tf.image.resize, [−1, 1]) and <see cref="HuggingFace"/> (ViTImageProcessor: PIL bilinear, [−1, 1]).
/// Save it next to a model with <see cref="ToJson"/>; read it back with <see cref="Parse"/>.
/// </summary>
public sealed record PreprocessRecipe
{
    public string Name { get; set; } = "custom";
    public int ImageSize { get; set; } = 224;
    /// <summary>Square resize only: when positive and not <see cref="ImageSize"/>, images are resized to this square
    /// size first (same interpolation), then to <see cref="ImageSize"/>: the resolution of the data a model was
    /// fine-tuned on at a higher one (a 64² CIFAR-10 model sees 32×32 images upsampled). 0: none.</summary>
    public int SourceSize { get; set; }
    public ResizeMode Resize { get; set; } = ResizeMode.ShorterSideThenCenterCrop;
    public double CropPct { get; set; } = 0.875;
    public Interpolation Interpolation { get; set; } = Interpolation.Bicubic;
    /// <summary>True: Pillow's antialiased resize on 8-bit pixels. False: float bilinear without antialias (TensorFlow's default).</summary>
    public bool Antialias { get; set; } = true;
    public float[] Mean { get; set; } = Normalize.ImageNetMean;
    public float[] Std { get; set; } = Normalize.ImageNetStd;
    /// <summary>Training: the random resized crop's area fraction range (timm 0.08–1, Google 0.05–1).</summary>
    public double[] TrainScale { get; set; } = [0.08, 1.0];
    public double[] TrainRatio { get; set; } = [3.0 / 4, 4.0 / 3];
    public double TrainHFlip { get; set; } = 0.5;

    public static PreprocessRecipe Timm(int imageSize = 224, double cropPct = 0.875, Interpolation interpolation = Interpolation.Bicubic) =>
        new() { Name = "timm", ImageSize = imageSize, CropPct = cropPct, Interpolation = interpolation };

    public static PreprocessRecipe Google(int imageSize = 224) => new()
    {
        Name = "google", ImageSize = imageSize, Resize = ResizeMode.Square, Interpolation = Interpolation.Bilinear,
        Antialias = false, Mean = Normalize.HalfMean, Std = Normalize.HalfStd, TrainScale = [0.05, 1.0],
    };

    public static PreprocessRecipe HuggingFace(int imageSize = 224) => new()
    {
        Name = "hf", ImageSize = imageSize, Resize = ResizeMode.Square, Interpolation = Interpolation.Bilinear,
        Mean = Normalize.HalfMean, Std = Normalize.HalfStd,
    };

    /// <summary>"timm", "google" or "hf" (also "huggingface") at the given size.</summary>
    public static PreprocessRecipe Named(string name, int imageSize = 224) => name.ToLowerInvariant() switch
    {
        "timm" => Timm(imageSize),
        "google" => Google(imageSize),
        "hf" or "huggingface" => HuggingFace(imageSize),
        _ => throw new ArgumentException($"unknown preprocessing recipe '{name}' (timm, google, hf)"),
    };

    /// <summary>Eval transform: resize (+ centre crop), normalise; float32 CHW, 3 × ImageSize × ImageSize.</summary>
    public float[] Apply(Image image)
    {
        Validate();
        var img = image.ToRgb();
        if (Resize == ResizeMode.ShorterSideThenCenterCrop)
        {
            int scaleSize = (int)Math.Floor(ImageSize / CropPct);
            var (w, h) = Transforms.Resize.ShorterSideSize(img.Width, img.Height, scaleSize);
            if (!Antialias) throw new NotSupportedException("shorter-side resize without antialias is not implemented");
            img = CenterCrop.Apply(Transforms.Resize.Pil(img, w, h, Interpolation), ImageSize, ImageSize);
            return Normalize.ToChw(img, Mean, Std);
        }
        return ResizeAndNormalize(ToSourceSize(img));
    }

    /// <summary>The first of the two square resizes when <see cref="SourceSize"/> is set (an image already of that size,
    /// or a recipe without one, is returned as it is).</summary>
    public Image ToSourceSize(Image img)
    {
        if (SourceSize <= 0 || SourceSize == ImageSize || img.Width == SourceSize && img.Height == SourceSize) return img;
        if (Antialias) return Transforms.Resize.Pil(img, SourceSize, SourceSize, Interpolation);
        var hwc = Transforms.Resize.BilinearNoAntialias(img, SourceSize, SourceSize);
        var px = new byte[hwc.Length];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)Math.Clamp(Math.Round(hwc[i]), 0, 255);
        return new Image(SourceSize, SourceSize, 3, px);
    }

    /// <summary>Training transform: random resized crop (from <paramref name="rng"/>), resize, random flip, normalise.</summary>
    public float[] ApplyTrain(Image image, Random rng)
    {
        Validate();
        var img = image.ToRgb();
        var b = RandomResizedCrop.Sample(img.Width, img.Height, rng, TrainScale[0], TrainScale[1], TrainRatio[0], TrainRatio[1]);
        var chw = ResizeAndNormalize(img.Crop(b.Left, b.Top, b.Width, b.Height));
        if (rng.NextDouble() < TrainHFlip) FlipChw(chw, ImageSize, ImageSize);
        return chw;
    }

    float[] ResizeAndNormalize(Image img)
    {
        if (Antialias) return Normalize.ToChw(Transforms.Resize.Pil(img, ImageSize, ImageSize, Interpolation), Mean, Std);
        if (Interpolation != Interpolation.Bilinear) throw new NotSupportedException("only bilinear resize is implemented without antialias");
        var hwc = Transforms.Resize.BilinearNoAntialias(img, ImageSize, ImageSize);
        return Normalize.ToChw(hwc, ImageSize, ImageSize, 3, Mean, Std);
    }

    /// <summary>The eval transform as a (1, 3, S, S) host tensor.</summary>
    public Tensor ApplyToTensor(Image image) => Tensor.FromArray(Apply(image), 1, 3, ImageSize, ImageSize);

    /// <summary>A batch (N, 3, S, S) host tensor of eval transforms.</summary>
    public Tensor ApplyBatch(IReadOnlyList<Image> images)
    {
        int per = 3 * ImageSize * ImageSize;
        var all = new float[images.Count * per];
        for (int i = 0; i < images.Count; i++) Apply(images[i]).CopyTo(all, i * per);
        return Tensor.FromArray(all, images.Count, 3, ImageSize, ImageSize);
    }

    static void FlipChw(float[] chw, int w, int h)
    {
        for (int row = 0; row < chw.Length / w; row++) Array.Reverse(chw, row * w, w);
    }

    void Validate()
    {
        if (ImageSize is <= 0 or > MaxImageSize) throw new ArgumentException($"recipe '{Name}': image size {ImageSize}; it must be in 1..{MaxImageSize}");
        if (Mean is null || Std is null || TrainScale is null || TrainRatio is null)
            throw new ArgumentException($"recipe '{Name}': mean, std, train_scale and train_ratio must be arrays, not null");
        if (!double.IsFinite(CropPct) || !double.IsFinite(TrainHFlip) || Mean.Concat(Std).Any(v => !float.IsFinite(v))
            || TrainScale.Concat(TrainRatio).Any(v => !double.IsFinite(v)))
            throw new ArgumentException($"recipe '{Name}': crop_pct, train_hflip, mean, std, train_scale and train_ratio must be finite numbers");
        if (SourceSize is < 0 or > MaxImageSize) throw new ArgumentException($"recipe '{Name}': source size {SourceSize}; it must be in 0..{MaxImageSize}");
        if (SourceSize > 0 && Resize != ResizeMode.Square) throw new ArgumentException($"recipe '{Name}': source_size goes with a square resize");
        if (CropPct is <= 0 or > 1 && Resize == ResizeMode.ShorterSideThenCenterCrop) throw new ArgumentException($"recipe '{Name}': crop_pct {CropPct}");
        if (Mean.Length != 3 || Std.Length != 3 || Std.Any(s => s == 0)) throw new ArgumentException($"recipe '{Name}': mean and std need 3 non-zero values");
        if (TrainScale.Length != 2 || TrainRatio.Length != 2) throw new ArgumentException($"recipe '{Name}': train scale/ratio need 2 values");
        if (!Antialias && Resize == ResizeMode.ShorterSideThenCenterCrop)
            throw new ArgumentException($"recipe '{Name}': shorter-side resize without antialias is not implemented (antialias true, or resize square)");
        if (!Antialias && Interpolation != Interpolation.Bilinear)
            throw new ArgumentException($"recipe '{Name}': only bilinear resize is implemented without antialias");
    }

    public string ToJson() => JsonSerializer.Serialize(this, RecipeJson.Default.PreprocessRecipe);

    /// <summary>Largest image size a recipe may ask for (16384: a 3×16384² float input is 3 GiB).</summary>
    public const int MaxImageSize = 16384;

    /// <summary>A recipe JSON file: any error in it (syntax, an unknown key, a value of the wrong type or range) is
    /// one <see cref="VitSharpException"/> line naming the file.</summary>
    public static PreprocessRecipe Load(string path)
    {
        if (!File.Exists(path)) throw new VitSharpException($"{path}: recipe file not found");
        try { return Parse(File.ReadAllText(path)); }
        catch (Exception e) when (e is JsonException or ArgumentException or NotSupportedException or InvalidOperationException)
        {
            throw new VitSharpException($"{path}: {ErrorText.OneLine(e.Message)}", e);
        }
    }

    public static PreprocessRecipe Parse(string json)
    {
        // A misspelt key would be silently ignored by the serializer: refuse it, suggesting the nearest.
        if (System.Text.Json.Nodes.JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })
            is System.Text.Json.Nodes.JsonObject o)
        {
            var known = RecipeJson.Default.PreprocessRecipe.Properties.Select(p => p.Name).ToArray();
            static string Norm(string k) => k.Replace("_", "").Replace("-", "").ToLowerInvariant();
            foreach (var (k, _) in o)
                if (!known.Contains(k))
                {
                    var near = known.OrderBy(x => Training.TrainConfig.Distance(Norm(x), Norm(k))).First();
                    var hint = Training.TrainConfig.Distance(Norm(near), Norm(k)) <= Math.Max(2, k.Length / 3) ? $" (did you mean '{near}'?)" : "";
                    throw new ArgumentException($"unknown recipe key '{k}'{hint}; known: {string.Join(", ", known)}");
                }
        }
        var r = JsonSerializer.Deserialize(json, RecipeJson.Default.PreprocessRecipe) ?? throw new ArgumentException("empty recipe JSON");
        r.Validate();
        return r;
    }

    public bool Equals(PreprocessRecipe? o) => o is not null && ToJson() == o.ToJson();
    public override int GetHashCode() => ToJson().GetHashCode();
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true, AllowTrailingCommas = true, ReadCommentHandling = JsonCommentHandling.Skip)]
[JsonSerializable(typeof(PreprocessRecipe))]
internal sealed partial class RecipeJson : JsonSerializerContext;
