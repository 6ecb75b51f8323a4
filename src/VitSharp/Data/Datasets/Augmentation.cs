namespace VitSharp.Data.Datasets;

/// <summary>
/// Pixels → normalised CHW floats at the model's size, with the light augmentations small-image training uses:
/// random crop after zero padding (the CIFAR recipe) and horizontal flip. Gray images are replicated to 3 channels.
/// Resizing (when the source size differs) is bilinear with half-pixel centres. Random choices come from the caller's
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

    public Augmentation ForEvaluation() => this with { CropPadding = 0, HorizontalFlip = false };

    /// <summary>Writes Channels × ImageSize × ImageSize floats into <paramref name="dst"/>.</summary>
    public void Apply(RawImage img, Random? rng, Span<float> dst)
    {
        int s = ImageSize, plane = s * s;
        if (dst.Length != Channels * plane) throw new ArgumentException("destination size");
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
                    float v = sx < 0 || sy < 0 || sx >= s || sy >= s ? 0f : Sample(img, srcC, sx, sy, s) / 255f;
                    // Zero padding is black before normalisation, as torchvision pads the uint8 image.
                    dst[c * plane + y * s + x] = (v - mean) * inv;
                }
        }
    }

    /// <summary>The value at (x, y) of the image resized to s×s (bilinear, half-pixel centres; exact copy at equal size).</summary>
    private static float Sample(RawImage img, int c, int x, int y, int s)
    {
        int w = img.Width, h = img.Height, ch = img.Channels;
        if (w == s && h == s) return img.Pixels[(y * w + x) * ch + c];
        float fx = Math.Clamp((x + 0.5f) * w / s - 0.5f, 0, w - 1), fy = Math.Clamp((y + 0.5f) * h / s - 0.5f, 0, h - 1);
        int x0 = (int)fx, y0 = (int)fy, x1 = Math.Min(x0 + 1, w - 1), y1 = Math.Min(y0 + 1, h - 1);
        float ax = fx - x0, ay = fy - y0;
        float P(int xx, int yy) => img.Pixels[(yy * w + xx) * ch + c];
        return (P(x0, y0) * (1 - ax) + P(x1, y0) * ax) * (1 - ay) + (P(x0, y1) * (1 - ax) + P(x1, y1) * ax) * ay;
    }
}
