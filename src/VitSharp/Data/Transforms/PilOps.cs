namespace VitSharp.Data.Transforms;

/// <summary>Resampling of <see cref="PilOps.Affine"/>, as PIL's Image.transform names it.</summary>
public enum AffineResample { Nearest, Bilinear }

/// <summary>
/// Pillow's 8-bit image operations as RandAugment and TrivialAugment use them (ImageOps, ImageEnhance, Image.transform /
/// rotate), on interleaved HWC buffers of 1 (L) or 3 (RGB) channels, with Pillow's rounding: LUT ops as ImageOps builds
/// them, blends truncated as Blend.c, gray as Convert.c's L24, SMOOTH rounded half up, bilinear sampling truncated as
/// Geometry.c, nearest in its 16.16 fixed point. <c>src</c> and <c>dst</c> may be the same span for the point (LUT) ops
/// and the blends except Sharpness; the geometric ops and Sharpness need distinct buffers. Nothing allocates.
/// </summary>
public static class PilOps
{
    public static void Invert(ReadOnlySpan<byte> src, Span<byte> dst)
    {
        Span<byte> lut = stackalloc byte[256];
        for (int i = 0; i < 256; i++) lut[i] = (byte)(255 - i);
        Point(src, dst, lut);
    }

    /// <summary>ImageOps.posterize: keeps the <paramref name="bits"/> high bits (≥ 8: a copy; 0: black).</summary>
    public static void Posterize(ReadOnlySpan<byte> src, Span<byte> dst, int bits)
    {
        if (bits >= 8) { src.CopyTo(dst); return; }
        byte mask = (byte)~((1 << (8 - Math.Max(bits, 0))) - 1);
        Span<byte> lut = stackalloc byte[256];
        for (int i = 0; i < 256; i++) lut[i] = (byte)(i & mask);
        Point(src, dst, lut);
    }

    /// <summary>ImageOps.solarize: values at or above <paramref name="threshold"/> are inverted.</summary>
    public static void Solarize(ReadOnlySpan<byte> src, Span<byte> dst, double threshold)
    {
        Span<byte> lut = stackalloc byte[256];
        for (int i = 0; i < 256; i++) lut[i] = i < threshold ? (byte)i : (byte)(255 - i);
        Point(src, dst, lut);
    }

    /// <summary>timm's solarize_add: values below <paramref name="threshold"/> get <paramref name="add"/>, clipped at 255.</summary>
    public static void SolarizeAdd(ReadOnlySpan<byte> src, Span<byte> dst, int add, int threshold = 128)
    {
        Span<byte> lut = stackalloc byte[256];
        for (int i = 0; i < 256; i++) lut[i] = i < threshold ? (byte)Math.Clamp(i + add, 0, 255) : (byte)i;
        Point(src, dst, lut);
    }

    /// <summary>ImageOps.autocontrast (cutoff 0): each channel's [min, max] stretched to [0, 255].</summary>
    public static void AutoContrast(ReadOnlySpan<byte> src, Span<byte> dst, int channels)
    {
        Span<byte> lut = stackalloc byte[256 * 4];
        Span<int> hist = stackalloc int[256];
        for (int ch = 0; ch < channels; ch++)
        {
            Histogram(src, channels, ch, hist);
            int lo = 0, hi = 255;
            while (lo < 256 && hist[lo] == 0) lo++;
            while (hi >= 0 && hist[hi] == 0) hi--;
            var l = lut.Slice(ch * 256, 256);
            if (hi <= lo) { for (int i = 0; i < 256; i++) l[i] = (byte)i; continue; }
            double scale = 255.0 / (hi - lo), offset = -lo * scale;
            for (int i = 0; i < 256; i++) l[i] = (byte)Math.Clamp((int)(i * scale + offset), 0, 255);
        }
        ApplyLut(src, dst, channels, lut);
    }

    /// <summary>ImageOps.equalize: each channel's histogram flattened with Pillow's step and rounding.</summary>
    public static void Equalize(ReadOnlySpan<byte> src, Span<byte> dst, int channels)
    {
        Span<byte> lut = stackalloc byte[256 * 4];
        Span<int> hist = stackalloc int[256];
        for (int ch = 0; ch < channels; ch++)
        {
            Histogram(src, channels, ch, hist);
            var l = lut.Slice(ch * 256, 256);
            int nonZero = 0, last = 0;
            long total = 0;
            for (int i = 0; i < 256; i++)
                if (hist[i] != 0) { nonZero++; last = hist[i]; total += hist[i]; }
            long step = nonZero <= 1 ? 0 : (total - last) / 255;
            if (step == 0) { for (int i = 0; i < 256; i++) l[i] = (byte)i; continue; }
            long n = step / 2;
            for (int i = 0; i < 256; i++)
            {
                l[i] = (byte)Math.Min(255, n / step);
                n += hist[i];
            }
        }
        ApplyLut(src, dst, channels, lut);
    }

    /// <summary>ImageEnhance.Brightness: a blend with black.</summary>
    public static void Brightness(ReadOnlySpan<byte> src, Span<byte> dst, double factor)
    {
        float a = (float)factor;
        Span<byte> lut = stackalloc byte[256];
        for (int i = 0; i < 256; i++) lut[i] = Blend(0, (byte)i, a);
        Point(src, dst, lut);
    }

    /// <summary>ImageEnhance.Color: a blend with the image's gray version (identity on one channel).</summary>
    public static void Color(ReadOnlySpan<byte> src, Span<byte> dst, int channels, double factor)
    {
        if (channels != 3) { src.CopyTo(dst); return; } // the gray of a gray image is itself: d + α·0
        // α·(s − d) tabulated over the 511 differences: the same float product Blend computes, once per difference.
        float a = (float)factor;
        Span<float> scaled = stackalloc float[511];
        for (int d = 0; d < 511; d++) scaled[d] = a * (d - 255);
        for (int i = 0; i < src.Length; i += 3)
        {
            byte r = src[i], gg = src[i + 1], b = src[i + 2];
            int g = Gray(r, gg, b);
            dst[i] = Clip(g + scaled[r - g + 255]);
            dst[i + 1] = Clip(g + scaled[gg - g + 255]);
            dst[i + 2] = Clip(g + scaled[b - g + 255]);
        }
    }

    /// <summary>ImageEnhance.Contrast: a blend with the rounded mean of the gray image.</summary>
    public static void Contrast(ReadOnlySpan<byte> src, Span<byte> dst, int channels, double factor)
    {
        long sum = 0;
        int n = src.Length / channels;
        if (channels == 3) for (int i = 0; i < src.Length; i += 3) sum += Gray(src[i], src[i + 1], src[i + 2]);
        else for (int i = 0; i < src.Length; i += channels) sum += src[i];
        byte mean = (byte)(int)((double)sum / n + 0.5);
        float a = (float)factor;
        Span<byte> lut = stackalloc byte[256];
        for (int i = 0; i < 256; i++) lut[i] = Blend(mean, (byte)i, a);
        Point(src, dst, lut);
    }

    /// <summary>ImageEnhance.Sharpness: a blend with ImageFilter.SMOOTH (3×3 kernel 1 1 1 / 1 5 1 / 1 1 1 over 13; border
    /// pixels kept, as Pillow's filter copies them). <paramref name="src"/> and <paramref name="dst"/> must differ.</summary>
    public static void Sharpness(ReadOnlySpan<byte> src, Span<byte> dst, int width, int height, int channels, double factor)
    {
        float a = (float)factor;
        const float k1 = 1f / 13, k5 = 5f / 13;
        int row = width * channels;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int o = y * row + x * channels;
                bool border = y == 0 || x == 0 || y == height - 1 || x == width - 1;
                for (int ch = 0; ch < channels; ch++)
                {
                    byte v = src[o + ch];
                    if (border) { dst[o + ch] = v; continue; } // the degenerate equals the image there
                    int up = o + ch - row, dn = o + ch + row;
                    // Filter.c's order: the row below, the row itself, the row above; 0.5 added for rounding.
                    float ss = 0.5f;
                    ss += src[dn - channels] * k1 + src[dn] * k1 + src[dn + channels] * k1;
                    ss += src[o + ch - channels] * k1 + v * k5 + src[o + ch + channels] * k1;
                    ss += src[up - channels] * k1 + src[up] * k1 + src[up + channels] * k1;
                    byte smooth = ss <= 0 ? (byte)0 : ss >= 255 ? (byte)255 : (byte)ss;
                    dst[o + ch] = Blend(smooth, v, a);
                }
            }
        }
    }

    /// <summary>
    /// Image.transform(size, AFFINE, (a, b, c, d, e, f)): output pixel (x, y) samples the input at
    /// (a·(x+½) + b·(y+½) + c, d·(x+½) + e·(y+½) + f); outside the input it is <paramref name="fill"/>.
    /// </summary>
    public static void Affine(ReadOnlySpan<byte> src, Span<byte> dst, int width, int height, int channels,
        ReadOnlySpan<double> m, AffineResample resample, byte fill)
    {
        if (m.Length != 6) throw new ArgumentException("an affine matrix has 6 coefficients");
        dst[..(width * height * channels)].Fill(fill);
        if (resample == AffineResample.Bilinear) { AffineBilinear(src, dst, width, height, channels, m); return; }
        if (m[1] == 0 && m[3] == 0) { AffineScale(src, dst, width, height, channels, m); return; }
        // Nearest: Pillow's 16.16 fixed-point loop (affine_fixed), which it takes for any image under 32768 pixels a side.
        static int Fix(double v) => (int)Math.Floor(v * 65536.0 + 0.5);
        int a0 = Fix(m[0]), a1 = Fix(m[1]), a3 = Fix(m[3]), a4 = Fix(m[4]);
        int a2 = Fix(m[2] + m[0] * 0.5 + m[1] * 0.5), a5 = Fix(m[5] + m[3] * 0.5 + m[4] * 0.5);
        for (int y = 0; y < height; y++)
        {
            int xx = a2, yy = a5;
            for (int x = 0; x < width; x++, xx += a0, yy += a3)
            {
                int xin = xx >> 16, yin = yy >> 16;
                if (xin < 0 || xin >= width || yin < 0 || yin >= height) continue;
                src.Slice((yin * width + xin) * channels, channels).CopyTo(dst.Slice((y * width + x) * channels, channels));
            }
            a2 += a1;
            a5 += a4;
        }
    }

    /// <summary>ImagingScaleAffine: nearest with no rotation or shear (PIL's path for translations).</summary>
    private static void AffineScale(ReadOnlySpan<byte> src, Span<byte> dst, int width, int height, int channels, ReadOnlySpan<double> m)
    {
        static int Coord(double v) => v < 0 ? -1 : (int)v;
        double yo = m[5] + m[4] * 0.5;
        for (int y = 0; y < height; y++, yo += m[4])
        {
            int yi = Coord(yo);
            if (yi < 0 || yi >= height) continue;
            double xo = m[2] + m[0] * 0.5;
            for (int x = 0; x < width; x++, xo += m[0])
            {
                int xi = Coord(xo);
                if (xi < 0 || xi >= width) continue;
                src.Slice((yi * width + xi) * channels, channels).CopyTo(dst.Slice((y * width + x) * channels, channels));
            }
        }
    }

    /// <summary>Geometry.c's bilinear_filter: edge-clamped taps, the result truncated.</summary>
    private static void AffineBilinear(ReadOnlySpan<byte> src, Span<byte> dst, int width, int height, int channels, ReadOnlySpan<double> m)
    {
        for (int y = 0; y < height; y++)
        {
            double yc = y + 0.5;
            for (int x = 0; x < width; x++)
            {
                double xc = x + 0.5;
                double xin = m[0] * xc + m[1] * yc + m[2], yin = m[3] * xc + m[4] * yc + m[5];
                if (xin < 0 || xin >= width || yin < 0 || yin >= height) continue;
                xin -= 0.5;
                yin -= 0.5;
                int x0 = (int)Math.Floor(xin), y0 = (int)Math.Floor(yin);
                double dx = xin - x0, dy = yin - y0;
                int c0 = Math.Clamp(x0, 0, width - 1) * channels, c1 = Math.Clamp(x0 + 1, 0, width - 1) * channels;
                int r0 = Math.Clamp(y0, 0, height - 1) * width * channels;
                bool hasR1 = y0 + 1 >= 0 && y0 + 1 < height;
                int r1 = (y0 + 1) * width * channels;
                int o = (y * width + x) * channels;
                for (int ch = 0; ch < channels; ch++)
                {
                    double p = src[r0 + c0 + ch], q = src[r0 + c1 + ch];
                    double v1 = p + (q - p) * dx, v2 = v1;
                    if (hasR1)
                    {
                        p = src[r1 + c0 + ch];
                        q = src[r1 + c1 + ch];
                        v2 = p + (q - p) * dx;
                    }
                    dst[o + ch] = (byte)(v1 + (v2 - v1) * dy);
                }
            }
        }
    }

    /// <summary>Image.rotate(degrees) about the centre (counter-clockwise, same size), with Pillow's matrix (cos and sin
    /// rounded to 15 decimals, so multiples of 90° sample pixel centres exactly).</summary>
    public static void Rotate(ReadOnlySpan<byte> src, Span<byte> dst, int width, int height, int channels, double degrees,
        AffineResample resample, byte fill)
    {
        double angle = -(degrees * (Math.PI / 180)); // math.radians
        double cos = Math.Round(Math.Cos(angle), 15), sin = Math.Round(Math.Sin(angle), 15);
        double cx = width / 2.0, cy = height / 2.0;
        Span<double> m = [cos, sin, 0, -sin, cos, 0];
        m[2] = cos * -cx + sin * -cy + cx;
        m[5] = -sin * -cx + cos * -cy + cy;
        Affine(src, dst, width, height, channels, m, resample, fill);
    }

    /// <summary>Image.blend(degenerate, image, α) on one sample: d + α·(s − d) in float, clipped and truncated.</summary>
    private static byte Blend(byte degenerate, byte image, float alpha) => Clip(degenerate + alpha * (image - degenerate));

    private static byte Clip(float t) => t <= 0 ? (byte)0 : t >= 255 ? (byte)255 : (byte)t;

    private static void Point(ReadOnlySpan<byte> src, Span<byte> dst, ReadOnlySpan<byte> lut)
    {
        dst = dst[..src.Length];
        for (int i = 0; i < src.Length; i++) dst[i] = lut[src[i]];
    }

    /// <summary>Convert.c's RGB → L (ITU-R 601-2 luma in 16-bit fixed point, rounded).</summary>
    public static byte Gray(byte r, byte g, byte b) => (byte)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);

    private static void Histogram(ReadOnlySpan<byte> src, int channels, int ch, Span<int> hist)
    {
        hist.Clear();
        for (int i = ch; i < src.Length; i += channels) hist[src[i]]++;
    }

    private static void ApplyLut(ReadOnlySpan<byte> src, Span<byte> dst, int channels, ReadOnlySpan<byte> lut)
    {
        if (channels == 3)
            for (int i = 0; i < src.Length; i += 3)
            {
                dst[i] = lut[src[i]];
                dst[i + 1] = lut[256 + src[i + 1]];
                dst[i + 2] = lut[512 + src[i + 2]];
            }
        else
            for (int i = 0; i < src.Length; i++) dst[i] = lut[(i % channels) * 256 + src[i]];
    }
}
