using System.Globalization;
using VitSharp.Data.Transforms;

namespace VitSharp.Data.Datasets;

/// <summary>The image operations RandAugment and TrivialAugment choose from (timm's names).</summary>
public enum AugmentOp
{
    Identity, AutoContrast, Equalize, Invert, Rotate, Posterize, Solarize, SolarizeAdd,
    Color, Contrast, Brightness, Sharpness, ShearX, ShearY,
    /// <summary>Horizontal shift; the argument is PIL's matrix offset c in pixels (output x samples input x + c).</summary>
    TranslateX,
    TranslateY,
}

/// <summary>
/// A policy of random 8-bit image operations applied after the crop and flip and before normalisation (timm's and
/// torchvision's place for it). <see cref="Parse"/> reads timm's strings (<c>rand-m9-mstd0.5-inc1</c>) and
/// <c>trivial</c>. Every draw comes from the caller's per-sample RNG, so a seed fixes the result.
/// </summary>
public abstract class AutoAugment
{
    /// <summary>The string this policy was parsed from (canonical form).</summary>
    public abstract string Spec { get; }

    /// <summary>Augments the width × height × channels image held in <paramref name="a"/>, using <paramref name="b"/> as
    /// scratch of the same size; returns whichever of the two holds the result.</summary>
    public abstract byte[] Apply(byte[] a, byte[] b, int width, int height, int channels, Random rng);

    /// <summary>null, "" or "none": no policy; "rand-…": <see cref="RandAugment"/>; "trivial" (or torchvision's
    /// "trivialaugment_wide", timm's "ta_wide"): <see cref="TrivialAugment"/>. Anything else is a <see cref="VitSharpException"/>.</summary>
    public static AutoAugment? Parse(string? spec)
    {
        if (string.IsNullOrWhiteSpace(spec) || spec.Trim().Equals("none", StringComparison.OrdinalIgnoreCase)) return null;
        var s = spec.Trim();
        if (s.Equals("trivial", StringComparison.OrdinalIgnoreCase) || s.Equals("trivialaugment_wide", StringComparison.OrdinalIgnoreCase)
            || s.Equals("ta_wide", StringComparison.OrdinalIgnoreCase)) return new TrivialAugment();
        if (s.StartsWith("rand", StringComparison.Ordinal) && (s.Length == 4 || s[4] == '-')) return RandAugment.FromSpec(s);
        throw new VitSharpException($"'{spec}' is not an augmentation policy (rand-m9-mstd0.5-inc1 style, trivial, or null)");
    }

    /// <summary>Runs one operation from <paramref name="src"/> into <paramref name="dst"/> (distinct buffers).
    /// <paramref name="arg"/>: degrees (Rotate), bits (Posterize), threshold (Solarize), addend (SolarizeAdd), enhance
    /// factor (Color, Contrast, Brightness, Sharpness), shear factor, or translation offset in pixels.</summary>
    public static void Run(AugmentOp op, double arg, ReadOnlySpan<byte> src, Span<byte> dst, int width, int height, int channels,
        AffineResample resample, byte fill)
    {
        switch (op)
        {
            case AugmentOp.Identity: src.CopyTo(dst); break;
            case AugmentOp.AutoContrast: PilOps.AutoContrast(src, dst, channels); break;
            case AugmentOp.Equalize: PilOps.Equalize(src, dst, channels); break;
            case AugmentOp.Invert: PilOps.Invert(src, dst); break;
            case AugmentOp.Posterize: PilOps.Posterize(src, dst, (int)arg); break;
            case AugmentOp.Solarize: PilOps.Solarize(src, dst, arg); break;
            case AugmentOp.SolarizeAdd: PilOps.SolarizeAdd(src, dst, (int)arg); break;
            case AugmentOp.Color: PilOps.Color(src, dst, channels, arg); break;
            case AugmentOp.Contrast: PilOps.Contrast(src, dst, channels, arg); break;
            case AugmentOp.Brightness: PilOps.Brightness(src, dst, arg); break;
            case AugmentOp.Sharpness: PilOps.Sharpness(src, dst, width, height, channels, arg); break;
            case AugmentOp.Rotate: PilOps.Rotate(src, dst, width, height, channels, arg, resample, fill); break;
            case AugmentOp.ShearX: PilOps.Affine(src, dst, width, height, channels, [1, arg, 0, 0, 1, 0], resample, fill); break;
            case AugmentOp.ShearY: PilOps.Affine(src, dst, width, height, channels, [1, 0, 0, arg, 1, 0], resample, fill); break;
            case AugmentOp.TranslateX: PilOps.Affine(src, dst, width, height, channels, [1, 0, arg, 0, 1, 0], resample, fill); break;
            case AugmentOp.TranslateY: PilOps.Affine(src, dst, width, height, channels, [1, 0, 0, 0, 1, arg], resample, fill); break;
            default: throw new ArgumentOutOfRangeException(nameof(op));
        }
    }

    /// <summary>Python's random.gauss in spirit: a Box–Muller normal from two uniforms of <paramref name="rng"/>.</summary>
    internal static double Gauss(Random rng, double mean, double std)
    {
        double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
        return mean + std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

/// <summary>
/// timm's RandAugment (<c>timm/data/auto_augment.py</c>): N operations drawn uniformly with replacement (or by timm's
/// weight set 0 without replacement), each applied with probability 0.5 at magnitude M (0–10 scale) plus Gaussian
/// noise of std <c>mstd</c> (uniform in [0, M] when mstd &gt; 100), clipped to [0, mmax or 10], mapped to each op's range
/// as timm's level functions do: Rotate ±30°·M/10, Shear ±0.3·M/10, TranslateRel ±0.45·M/10 of the side, Solarize
/// threshold 256·M/10 (increasing: 256 − that), Posterize bits 4·M/10 (increasing: 4 − that), SolarizeAdd 110·M/10,
/// enhance factors 0.1 + 1.8·M/10 (increasing: 1 ± 0.9·M/10, at least 0.1); signs are random. Affine ops resample
/// bilinearly (timm with a fixed 'bilinear' interpolation; timm's default 'random' also picks bicubic) with fill 128.
/// </summary>
public sealed class RandAugment : AutoAugment
{
    /// <summary>The image operations RandAugment draws from.</summary>
    public enum Op
    {
        AutoContrast, Equalize, Invert, Rotate, Posterize, Solarize, SolarizeAdd, Color, Contrast, Brightness, Sharpness,
        ShearX, ShearY, TranslateXRel, TranslateYRel,
        PosterizeIncreasing, SolarizeIncreasing, ColorIncreasing, ContrastIncreasing, BrightnessIncreasing, SharpnessIncreasing,
    }

    /// <summary>timm's _RAND_TRANSFORMS.</summary>
    public static readonly Op[] Standard =
    [
        Op.AutoContrast, Op.Equalize, Op.Invert, Op.Rotate, Op.Posterize, Op.Solarize, Op.SolarizeAdd, Op.Color,
        Op.Contrast, Op.Brightness, Op.Sharpness, Op.ShearX, Op.ShearY, Op.TranslateXRel, Op.TranslateYRel,
    ];

    /// <summary>timm's _RAND_INCREASING_TRANSFORMS (severity grows with the magnitude for every op).</summary>
    public static readonly Op[] Increasing =
    [
        Op.AutoContrast, Op.Equalize, Op.Invert, Op.Rotate, Op.PosterizeIncreasing, Op.SolarizeIncreasing, Op.SolarizeAdd,
        Op.ColorIncreasing, Op.ContrastIncreasing, Op.BrightnessIncreasing, Op.SharpnessIncreasing,
        Op.ShearX, Op.ShearY, Op.TranslateXRel, Op.TranslateYRel,
    ];

    /// <summary>timm's _RAND_CHOICE_WEIGHTS_0, by position in the op list ('w0').</summary>
    private static readonly double[] Weights0 = [0.025, 0.005, 0, 0.3, 0, 0.005, 0.005, 0.025, 0.005, 0.005, 0.025, 0.2, 0.2, 0.1, 0.1];

    private string _spec = "rand";

    public Op[] Ops { get; init; } = Standard;
    public int NumOps { get; init; } = 2;
    public double Magnitude { get; init; } = 10;
    /// <summary>Std of the magnitude noise; +∞: uniform in [0, Magnitude].</summary>
    public double MagnitudeStd { get; init; }
    /// <summary>Upper clip of the noisy magnitude (timm: 10 unless 'mmax' says otherwise).</summary>
    public double MagnitudeMax { get; init; } = 10;
    /// <summary>Probability each chosen op is applied (timm: 0.5).</summary>
    public double Prob { get; init; } = 0.5;
    /// <summary>Op choice weights (normalised), drawn without replacement; null: uniform with replacement.</summary>
    public double[]? ChoiceWeights { get; init; }
    public double TranslatePct { get; init; } = 0.45;
    public AffineResample Resample { get; init; } = AffineResample.Bilinear;
    /// <summary>Fill of pixels that affine ops bring in from outside (timm's _FILL, 128 gray).</summary>
    public byte Fill { get; init; } = 128;
    public override string Spec => _spec;

    /// <summary>timm's rand_augment_transform string: 'rand' then dash-separated m&lt;int&gt; (magnitude, default 10),
    /// n&lt;int&gt; (ops per image, 2), mstd&lt;float&gt;, mmax&lt;int&gt;, inc&lt;0|1&gt;, w0 (weighted choice).
    /// Unknown or malformed sections are errors (timm asserts; we also reject 'inc0' ambiguity by reading it as off).</summary>
    public static RandAugment FromSpec(string spec)
    {
        var parts = spec.Split('-');
        if (parts[0] != "rand") throw new VitSharpException($"'{spec}': a RandAugment string starts with 'rand'");
        double m = 10, mstd = 0, mmax = 10;
        int n = 2;
        bool inc = false;
        int? weights = null;
        foreach (var p in parts[1..])
        {
            int d = 0;
            while (d < p.Length && !char.IsAsciiDigit(p[d]) && p[d] != '.') d++;
            string key = p[..d], val = p[d..];
            bool okInt = int.TryParse(val, NumberStyles.None, CultureInfo.InvariantCulture, out int iv);
            bool okFloat = double.TryParse(val, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double fv);
            string Bad(string what) => $"'{spec}': section '{p}' {what}";
            switch (key)
            {
                case "m" when okInt: m = iv; break;
                case "n" when okInt && iv >= 1: n = iv; break;
                case "mstd" when okFloat: mstd = fv > 100 ? double.PositiveInfinity : fv; break;
                case "mmax" when okInt: mmax = iv; break;
                case "inc" when okInt: inc = iv != 0; break;
                case "w" when okInt && iv == 0: weights = 0; break;
                case "m" or "n" or "mstd" or "mmax" or "inc" or "w": throw new VitSharpException(Bad("has a bad value"));
                default: throw new VitSharpException(Bad("is not one of m, n, mstd, mmax, inc, w"));
            }
        }
        var ops = inc ? Increasing : Standard;
        double[]? w = null;
        if (weights is not null)
        {
            double sum = Weights0.Sum();
            w = Weights0.Select(x => x / sum).ToArray();
            if (w.Count(x => x > 0) < n) throw new VitSharpException($"'{spec}': weighted choice has fewer than {n} ops");
        }
        return new RandAugment
        {
            Ops = ops, NumOps = n, Magnitude = m, MagnitudeStd = mstd, MagnitudeMax = mmax, ChoiceWeights = w, _spec = spec,
        };
    }

    public override byte[] Apply(byte[] a, byte[] b, int width, int height, int channels, Random rng)
    {
        Span<int> chosen = stackalloc int[Math.Min(NumOps, 64)];
        if (ChoiceWeights is null)
            for (int i = 0; i < chosen.Length; i++) chosen[i] = rng.Next(Ops.Length);
        else ChooseWeighted(chosen, rng);
        int len = width * height * channels;
        foreach (int k in chosen)
        {
            if (Prob < 1 && rng.NextDouble() > Prob) continue;
            double mag = Magnitude;
            if (MagnitudeStd > 0) mag = double.IsPositiveInfinity(MagnitudeStd) ? rng.NextDouble() * Magnitude : Gauss(rng, Magnitude, MagnitudeStd);
            mag = Math.Max(0, Math.Min(mag, MagnitudeMax));
            var (op, arg) = Level(Ops[k], mag, width, height, rng);
            Run(op, arg, a.AsSpan(0, len), b.AsSpan(0, len), width, height, channels, Resample, Fill);
            (a, b) = (b, a);
        }
        return a;
    }

    /// <summary>timm's LEVEL_TO_ARG: the op and its argument at magnitude <paramref name="m"/> (0–10 scale), drawing the
    /// random sign where timm does.</summary>
    public (AugmentOp Op, double Arg) Level(Op op, double m, int width, int height, Random rng)
    {
        double f = m / 10;
        double Negate(double v) => rng.NextDouble() > 0.5 ? -v : v;
        double EnhanceInc() => Math.Max(0.1, 1.0 + Negate(f * 0.9));
        return op switch
        {
            Op.AutoContrast => (AugmentOp.AutoContrast, 0),
            Op.Equalize => (AugmentOp.Equalize, 0),
            Op.Invert => (AugmentOp.Invert, 0),
            Op.Rotate => (AugmentOp.Rotate, Negate(f * 30)),
            Op.Posterize => (AugmentOp.Posterize, (int)(f * 4)),
            Op.PosterizeIncreasing => (AugmentOp.Posterize, 4 - (int)(f * 4)),
            Op.Solarize => (AugmentOp.Solarize, (int)(f * 256)),
            Op.SolarizeIncreasing => (AugmentOp.Solarize, 256 - (int)(f * 256)),
            Op.SolarizeAdd => (AugmentOp.SolarizeAdd, (int)(f * 110)),
            Op.Color => (AugmentOp.Color, f * 1.8 + 0.1),
            Op.Contrast => (AugmentOp.Contrast, f * 1.8 + 0.1),
            Op.Brightness => (AugmentOp.Brightness, f * 1.8 + 0.1),
            Op.Sharpness => (AugmentOp.Sharpness, f * 1.8 + 0.1),
            Op.ColorIncreasing => (AugmentOp.Color, EnhanceInc()),
            Op.ContrastIncreasing => (AugmentOp.Contrast, EnhanceInc()),
            Op.BrightnessIncreasing => (AugmentOp.Brightness, EnhanceInc()),
            Op.SharpnessIncreasing => (AugmentOp.Sharpness, EnhanceInc()),
            Op.ShearX => (AugmentOp.ShearX, Negate(f * 0.3)),
            Op.ShearY => (AugmentOp.ShearY, Negate(f * 0.3)),
            Op.TranslateXRel => (AugmentOp.TranslateX, Negate(f * TranslatePct) * width),
            Op.TranslateYRel => (AugmentOp.TranslateY, Negate(f * TranslatePct) * height),
            _ => throw new ArgumentOutOfRangeException(nameof(op)),
        };
    }

    /// <summary>np.random.choice(ops, n, replace=False, p=weights) in spirit: successive weighted draws, renormalised.</summary>
    private void ChooseWeighted(Span<int> chosen, Random rng)
    {
        var w = ChoiceWeights!;
        Span<bool> taken = stackalloc bool[w.Length];
        for (int i = 0; i < chosen.Length; i++)
        {
            double total = 0;
            for (int j = 0; j < w.Length; j++) if (!taken[j]) total += w[j];
            double u = rng.NextDouble() * total;
            int pick = -1;
            for (int j = 0; j < w.Length; j++)
            {
                if (taken[j] || w[j] <= 0) continue;
                pick = j;
                if ((u -= w[j]) < 0) break;
            }
            taken[pick] = true;
            chosen[i] = pick;
        }
    }
}

/// <summary>
/// torchvision's TrivialAugmentWide: one op drawn uniformly from 14 (Identity, ShearX, ShearY, TranslateX, TranslateY,
/// Rotate, Brightness, Color, Contrast, Sharpness, Posterize, Solarize, AutoContrast, Equalize), one magnitude drawn
/// uniformly from its 31 bins (shear and enhance 0–0.99, translate 0–32 px, rotate 0–135°, posterize 8→2 bits,
/// solarize 255→0), a random sign for the signed ones; enhance factors are 1 + magnitude. torchvision's defaults:
/// nearest resampling, fill 0.
/// </summary>
public sealed class TrivialAugment : AutoAugment
{
    public const int Bins = 31;

    private static readonly (AugmentOp Op, float[]? Magnitudes, bool Signed)[] Space =
    [
        (AugmentOp.Identity, null, false),
        (AugmentOp.ShearX, Linspace(0f, 0.99f), true),
        (AugmentOp.ShearY, Linspace(0f, 0.99f), true),
        (AugmentOp.TranslateX, Linspace(0f, 32f), true),
        (AugmentOp.TranslateY, Linspace(0f, 32f), true),
        (AugmentOp.Rotate, Linspace(0f, 135f), true),
        (AugmentOp.Brightness, Linspace(0f, 0.99f), true),
        (AugmentOp.Color, Linspace(0f, 0.99f), true),
        (AugmentOp.Contrast, Linspace(0f, 0.99f), true),
        (AugmentOp.Sharpness, Linspace(0f, 0.99f), true),
        (AugmentOp.Posterize, Enumerable.Range(0, Bins).Select(i => (float)(8 - (int)Math.Round(i / 5.0, MidpointRounding.ToEven))).ToArray(), false),
        (AugmentOp.Solarize, Linspace(255f, 0f), false),
        (AugmentOp.AutoContrast, null, false),
        (AugmentOp.Equalize, null, false),
    ];

    public AffineResample Resample { get; init; } = AffineResample.Nearest;
    public byte Fill { get; init; }
    public override string Spec => "trivial";

    /// <summary>The ops in torchvision's order.</summary>
    public static IReadOnlyList<AugmentOp> Ops { get; } = Space.Select(s => s.Op).ToArray();

    /// <summary>The magnitude of <paramref name="op"/> at <paramref name="bin"/> (0 for the ops without bins).</summary>
    public static double MagnitudeAt(AugmentOp op, int bin) => Space.First(s => s.Op == op).Magnitudes is { } m ? m[bin] : 0;

    public override byte[] Apply(byte[] a, byte[] b, int width, int height, int channels, Random rng)
    {
        var (op, mags, signed) = Space[rng.Next(Space.Length)];
        double mag = mags is null ? 0 : mags[rng.Next(mags.Length)];
        if (signed && rng.Next(2) == 1) mag = -mag;
        var (o, arg) = Map(op, mag);
        if (o == AugmentOp.Identity) return a;
        int len = width * height * channels;
        Run(o, arg, a.AsSpan(0, len), b.AsSpan(0, len), width, height, channels, Resample, Fill);
        return b;
    }

    /// <summary>torchvision's _apply_op: a signed magnitude → our op argument (PIL matrix conventions).</summary>
    public static (AugmentOp Op, double Arg) Map(AugmentOp op, double mag) => op switch
    {
        // F.affine with shear=degrees(atan(m)) about (0, 0): PIL matrix (1, tan(radians(degrees(atan m))), 0, 0, 1, 0).
        AugmentOp.ShearX or AugmentOp.ShearY => (op, Math.Tan(Math.Atan(mag) * (180 / Math.PI) * (Math.PI / 180))),
        // translate=[int(m), 0]: the inverse matrix offset is −int(m).
        AugmentOp.TranslateX or AugmentOp.TranslateY => (op, -(double)(int)mag),
        AugmentOp.Brightness or AugmentOp.Color or AugmentOp.Contrast or AugmentOp.Sharpness => (op, 1.0 + mag),
        _ => (op, mag),
    };

    /// <summary>torch.linspace in float32: start + i·step for the first half, end − (n−1−i)·step for the rest.</summary>
    private static float[] Linspace(float start, float end)
    {
        var v = new float[Bins];
        float step = (end - start) / (Bins - 1);
        int half = Bins / 2;
        for (int i = 0; i < Bins; i++) v[i] = i < half ? start + step * i : end - step * (Bins - 1 - i);
        return v;
    }
}
