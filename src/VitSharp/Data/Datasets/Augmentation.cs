namespace VitSharp.Data.Datasets;

/// <summary>
/// Pixels → normalised CHW floats at the model's size, with the light augmentations small-image training uses:
/// random crop after zero padding (the CIFAR recipe) and horizontal flip, or a named recipe's random resized crop; then
/// optionally RandAugment / TrivialAugment on the 8-bit crop and random erasing on the normalised floats (timm's order).
/// Gray images are replicated to 3 channels. Random choices come from the caller's RNG, seeded per sample, so a seed
/// fixes every augmented batch. Thread-safe: the loader calls <see cref="Apply"/> from all its workers at once.
/// </summary>
public sealed record Augmentation
{
    public int ImageSize { get; init; } = 32;
    /// <summary>When positive and not <see cref="ImageSize"/>: images are resized to this square size first, then to
    /// <see cref="ImageSize"/> (the data's own resolution for a model fine-tuned at a higher one).</summary>
    public int SourceSize { get; init; }
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
    /// <summary>RandAugment or TrivialAugment on the 8-bit crop (after crop and flip, before normalisation); training only.</summary>
    public AutoAugment? AutoAugment { get; init; }
    /// <summary>timm's random erasing on the normalised image (last); training only.</summary>
    public RandomErasing? RandomErasing { get; init; }

    public void Validate()
    {
        if (ImageSize <= 0 || Channels <= 0) throw new VitSharpException($"image size {ImageSize} and channels {Channels} must be positive");
        if (Recipe is not null && (Channels != 3 || Recipe.ImageSize != ImageSize))
            throw new VitSharpException($"recipe '{Recipe.Name}' makes 3×{Recipe.ImageSize}² images; the model takes {Channels}×{ImageSize}²");
        if (Mean.Length is not 1 && Mean.Length != Channels || Std.Length is not 1 && Std.Length != Channels)
            throw new VitSharpException($"normalisation needs 1 or {Channels} values for mean and std (got {Mean.Length} and {Std.Length})");
        if (AutoAugment is not null && Channels is not (1 or 3))
            throw new VitSharpException($"data.auto_augment works on 1- or 3-channel images, not {Channels}");
    }

    public Augmentation ForEvaluation() => this with { CropPadding = 0, HorizontalFlip = false, Train = false, AutoAugment = null, RandomErasing = null };

    /// <summary>Writes Channels × ImageSize × ImageSize floats into <paramref name="dst"/>. Never writes into
    /// <paramref name="img"/> (a cached dataset hands out its own pixels).</summary>
    public void Apply(Image img, Random? rng, Span<float> dst)
    {
        int s = ImageSize, plane = s * s;
        if (dst.Length != Channels * plane) throw new ArgumentException("destination size");
        bool train = Train && rng is not null;
        if (Recipe is { Antialias: false } && !(train && AutoAugment is not null))
        {
            // TensorFlow-style float resize (google): the recipe's own float path.
            var chw = train ? Recipe.ApplyTrain(img, rng!) : Recipe.Apply(img);
            chw.AsSpan().CopyTo(dst);
        }
        else if (Recipe is not null)
        {
            if (train) RecipeTrain(img, rng!, dst);
            else RecipeEval(img, dst);
        }
        else Simple(img, rng, train, dst);
        if (train && RandomErasing is not null) RandomErasing.Apply(dst, Channels, s, s, rng!);
    }

    private void Simple(Image img, Random? rng, bool train, Span<float> dst)
    {
        // Another size is resized first as timm does (Pillow bicubic with antialiasing), then cropped and flipped.
        int s = ImageSize, plane = s * s, C = Channels;
        img = img.To8Bit();
        if (SourceSize > 0 && SourceSize != s && (img.Width != SourceSize || img.Height != SourceSize))
            img = Transforms.Resize.Pil(img, SourceSize, SourceSize, Transforms.Interpolation.Bicubic);
        if (img.Width != s || img.Height != s) img = Transforms.Resize.Pil(img, s, s, Transforms.Interpolation.Bicubic);
        int ox = 0, oy = 0;
        bool flip = false;
        if (rng is not null && CropPadding > 0)
        {
            ox = rng.Next(-CropPadding, CropPadding + 1);
            oy = rng.Next(-CropPadding, CropPadding + 1);
        }
        if (rng is not null && HorizontalFlip) flip = rng.Next(2) == 1;
        var scratch = Scratch.Get(C * plane);
        var px = img.Pixels!;
        int ic = img.Channels;
        var a = scratch.A;
        for (int y = 0; y < s; y++)
        {
            int sy = y + oy;
            for (int x = 0; x < s; x++)
            {
                int sx = (flip ? s - 1 - x : x) + ox, o = (y * s + x) * C;
                // Zero padding is black before normalisation, as torchvision pads the uint8 image.
                if (sx < 0 || sy < 0 || sx >= s || sy >= s) { for (int c = 0; c < C; c++) a[o + c] = 0; continue; }
                int i = (sy * s + sx) * ic;
                if (ic == C) for (int c = 0; c < C; c++) a[o + c] = px[i + c];
                else for (int c = 0; c < C; c++) a[o + c] = px[i + (ic == 1 ? 0 : Math.Min(c, ic - 1))];
            }
        }
        var cur = train && AutoAugment is not null ? AutoAugment.Apply(a, scratch.B, s, s, C, rng!) : a;
        Span<float> lut = C <= 4 ? stackalloc float[C * 256] : new float[C * 256];
        FillLut(lut);
        for (int c = 0; c < C; c++)
        {
            var l = lut.Slice(c * 256, 256);
            var d = dst.Slice(c * plane, plane);
            for (int i = 0; i < plane; i++) d[i] = l[cur[i * C + c]];
        }
    }

    /// <summary>The recipe's random resized crop and flip on 8-bit pixels (the same draws and the same floats as
    /// <see cref="Transforms.PreprocessRecipe.ApplyTrain"/>, without its float intermediates), then the policy if any,
    /// then the recipe's normalisation.</summary>
    private void RecipeTrain(Image image, Random rng, Span<float> dst)
    {
        var r = Recipe!;
        int s = ImageSize, plane = s * s;
        var img = image.ToRgb();
        var b = Transforms.RandomResizedCrop.Sample(img.Width, img.Height, rng, r.TrainScale[0], r.TrainScale[1], r.TrainRatio[0], r.TrainRatio[1]);
        var scratch = Scratch.Get(3 * plane);
        var a = scratch.A;
        // The crop and resize in one pass into the worker's buffer: no per-sample image copies.
        if (r.Antialias) Transforms.Resize.PilInto(img, b.Left, b.Top, b.Width, b.Height, a, s, s, r.Interpolation);
        else
        {
            // TensorFlow-style float resize, rounded to 8 bits for the 8-bit policy.
            var f = Transforms.Resize.BilinearNoAntialias(img.Crop(b.Left, b.Top, b.Width, b.Height), s, s);
            for (int i = 0; i < 3 * plane; i++) a[i] = (byte)Math.Clamp(Math.Round(f[i]), 0, 255);
        }
        if (rng.NextDouble() < r.TrainHFlip)
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s / 2; x++)
                    for (int c = 0; c < 3; c++)
                        (a[(y * s + x) * 3 + c], a[(y * s + s - 1 - x) * 3 + c]) = (a[(y * s + s - 1 - x) * 3 + c], a[(y * s + x) * 3 + c]);
        var cur = AutoAugment is not null ? AutoAugment.Apply(a, scratch.B, s, s, 3, rng) : a;
        NormalizeRecipe(cur, dst);
    }

    /// <summary><see cref="Transforms.PreprocessRecipe.Apply"/> for antialiased recipes, normalising straight from the bytes.</summary>
    private void RecipeEval(Image image, Span<float> dst)
    {
        var r = Recipe!;
        int s = ImageSize;
        var img = image.ToRgb();
        if (r.Resize == Transforms.ResizeMode.ShorterSideThenCenterCrop)
        {
            int scaleSize = (int)Math.Floor(s / r.CropPct);
            var (w, h) = Transforms.Resize.ShorterSideSize(img.Width, img.Height, scaleSize);
            img = Transforms.CenterCrop.Apply(Transforms.Resize.Pil(img, w, h, r.Interpolation), s, s);
        }
        else img = Transforms.Resize.Pil(r.ToSourceSize(img), s, s, r.Interpolation);
        NormalizeRecipe(img.Pixels!, dst);
    }

    /// <summary>Normalize.ToChw's arithmetic, (v/255 − mean)/std, from 3-channel HWC bytes.</summary>
    private void NormalizeRecipe(byte[] hwc, Span<float> dst)
    {
        var r = Recipe!;
        int plane = ImageSize * ImageSize;
        Span<float> lut = stackalloc float[256];
        for (int c = 0; c < 3; c++)
        {
            float m = r.Mean[c], sd = r.Std[c];
            for (int v = 0; v < 256; v++) lut[v] = (v / 255f - m) / sd;
            var d = dst.Slice(c * plane, plane);
            for (int i = 0; i < plane; i++) d[i] = lut[hwc[i * 3 + c]];
        }
    }

    /// <summary>(v/255 − mean)·(1/std) for every byte and channel: the arithmetic of the per-pixel loop, tabulated.</summary>
    private void FillLut(Span<float> t)
    {
        for (int c = 0; c < Channels; c++)
        {
            float mean = Mean[c % Mean.Length], inv = 1f / Std[c % Std.Length];
            for (int v = 0; v < 256; v++) t[c * 256 + v] = (v / 255f - mean) * inv;
        }
    }

    /// <summary>Two byte buffers per worker thread, grown on demand and reused across samples.</summary>
    private sealed class Scratch
    {
        [ThreadStatic] private static Scratch? _current;
        public byte[] A = [], B = [];

        public static Scratch Get(int n)
        {
            var s = _current ??= new Scratch();
            if (s.A.Length < n) { s.A = new byte[n]; s.B = new byte[n]; }
            return s;
        }
    }
}
