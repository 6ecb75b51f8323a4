namespace VitSharp.Data.Datasets;

/// <summary>What <see cref="RandomErasing"/> writes into the erased box (timm's modes), in normalised units.</summary>
public enum ErasingMode
{
    /// <summary>Zeros (the dataset mean after normalisation).</summary>
    Const,
    /// <summary>One N(0, 1) value per channel.</summary>
    Rand,
    /// <summary>N(0, 1) per pixel and channel (timm's train.py default).</summary>
    Pixel,
}

/// <summary>
/// timm's RandomErasing on a normalised CHW image: with probability <see cref="Probability"/>, up to 10 tries of a box
/// of area uniform in [<see cref="MinArea"/>, <see cref="MaxArea"/>] of the image and log aspect ratio uniform in
/// [log <see cref="MinAspect"/>, −log <see cref="MinAspect"/>]; sides rounded half to even; the first box that fits
/// strictly inside is placed uniformly and filled per <see cref="Mode"/>. One box (timm's count 1).
/// </summary>
public sealed record RandomErasing(double Probability, ErasingMode Mode = ErasingMode.Pixel)
{
    public double MinArea { get; init; } = 0.02;
    public double MaxArea { get; init; } = 1 / 3.0;
    public double MinAspect { get; init; } = 0.3;

    /// <summary>"const", "rand" or "pixel" (timm's names).</summary>
    public static ErasingMode ParseMode(string? mode) => mode?.Trim().ToLowerInvariant() switch
    {
        null or "" or "pixel" => ErasingMode.Pixel,
        "const" => ErasingMode.Const,
        "rand" => ErasingMode.Rand,
        _ => throw new VitSharpException($"'{mode}' is not an erasing mode (const, rand, pixel)"),
    };

    public void Apply(Span<float> chw, int channels, int height, int width, Random rng)
    {
        if (rng.NextDouble() > Probability) return;
        double area = (double)height * width, logLo = Math.Log(MinAspect), logHi = Math.Log(1 / MinAspect);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = (MinArea + (MaxArea - MinArea) * rng.NextDouble()) * area;
            double aspect = Math.Exp(logLo + (logHi - logLo) * rng.NextDouble());
            int h = (int)Math.Round(Math.Sqrt(target * aspect), MidpointRounding.ToEven);
            int w = (int)Math.Round(Math.Sqrt(target / aspect), MidpointRounding.ToEven);
            if (w >= width || h >= height) continue;
            int top = rng.Next(0, height - h + 1), left = rng.Next(0, width - w + 1);
            int plane = height * width;
            for (int c = 0; c < channels; c++)
            {
                float v = Mode == ErasingMode.Rand ? (float)AutoAugment.Gauss(rng, 0, 1) : 0f;
                for (int y = top; y < top + h; y++)
                {
                    var row = chw.Slice(c * plane + y * width + left, w);
                    if (Mode == ErasingMode.Pixel) for (int x = 0; x < w; x++) row[x] = (float)AutoAugment.Gauss(rng, 0, 1);
                    else row.Fill(v);
                }
            }
            return;
        }
    }
}
