namespace VitSharp.Data.Datasets;

/// <summary>
/// Pixels → normalised CHW floats at the model's size, with the light augmentations small-image training uses:
/// random crop after zero padding (the CIFAR recipe) and horizontal flip. Gray images are replicated to 3 channels.
/// Random choices come from the caller's
/// RNG, seeded per sample, so a seed fixes every augmented batch.
/// </summary>
public sealed record Augmentation
{
    public int ImageSize { get; init; } = 32;
    public int Channels { get; init; } = 3;
    public float[] Mean { get; init; } = [0.5f, 0.5f, 0.5f];
    public float[] Std { get; init; } = [0.5f, 0.5f, 0.5f];
    /// <summary>Pixels of zero padding before a random crop back to the image size (0 = no crop).</summary>
    public int CropPadding { get; init; }
    public bool HorizontalFlip { get; init; }
    /// <summary>When set, the image codecs' named recipe does the work instead (timm, google, hf): random resized crop and
    /// flip for training, resize (and centre crop) for evaluation, with the recipe's own mean and std.</summary>
    public Transforms.PreprocessRecipe? Recipe { get; init; }
    /// <summary>Training randomness (crop, flip); false for evaluation.</summary>
    public bool Train { get; init; } = true;

    public void Validate()
    {
        if (ImageSize <= 0 || Channels <= 0) throw new VitSharpException($"image size {ImageSize} and channels {Channels} must be positive");
        if (Recipe is not null && (Channels != 3 || Recipe.ImageSize != ImageSize))
            throw new VitSharpException($"recipe '{Recipe.Name}' makes 3×{Recipe.ImageSize}² images; the model takes {Channels}×{ImageSize}²");
        if (Mean.Length is not 1 && Mean.Length != Channels || Std.Length is not 1 && Std.Length != Channels)
            throw new VitSharpException($"normalisation needs 1 or {Channels} values for mean and std (got {Mean.Length} and {Std.Length})");
    }

    public Augmentation ForEvaluation() => this with { CropPadding = 0, HorizontalFlip = false, Train = false };

    /// <summary>Writes Channels × ImageSize × ImageSize floats into <paramref name="dst"/>.</summary>
    public void Apply(Image img, Random? rng, Span<float> dst)
    {
        int s = ImageSize, plane = s * s;
        if (dst.Length != Channels * plane) throw new ArgumentException("destination size");
        if (Recipe is not null)
        {
            var chw = Train && rng is not null ? Recipe.ApplyTrain(img, rng) : Recipe.Apply(img);
            chw.AsSpan().CopyTo(dst);
            return;
        }
        // Another size is resized first as timm does (Pillow bicubic with antialiasing), then cropped and flipped.
        img = img.To8Bit();
        if (img.Width != s || img.Height != s) img = Transforms.Resize.Pil(img, s, s, Transforms.Interpolation.Bicubic);
        int ox = 0, oy = 0;
        bool flip = false;
        if (rng is not null && CropPadding > 0)
        {
            ox = rng.Next(-CropPadding, CropPadding + 1);
            oy = rng.Next(-CropPadding, CropPadding + 1);
        }
        if (rng is not null && HorizontalFlip) flip = rng.Next(2) == 1;
        for (int c = 0; c < Channels; c++)
        {
            int srcC = img.Channels == 1 ? 0 : Math.Min(c, img.Channels - 1);
            float mean = Mean[c % Mean.Length], inv = 1f / Std[c % Std.Length];
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s; x++)
                {
                    int sx = (flip ? s - 1 - x : x) + ox, sy = y + oy;
                    float v = sx < 0 || sy < 0 || sx >= s || sy >= s ? 0f : img.Pixels![(sy * s + sx) * img.Channels + srcC] / 255f;
                    // Zero padding is black before normalisation, as torchvision pads the uint8 image.
                    dst[c * plane + y * s + x] = (v - mean) * inv;
                }
        }
    }
}
