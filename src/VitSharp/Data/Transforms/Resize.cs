using System.Runtime.Intrinsics;

namespace VitSharp.Data.Transforms;

public enum Interpolation { Bilinear, Bicubic }

/// <summary>
/// Resizing that matches the peers bit for bit:
/// <see cref="Pil"/> is Pillow's Image.resize (what timm, torchvision-on-PIL and Hugging Face's ViTImageProcessor use):
/// a separable convolution, horizontal pass then vertical, whose filter support grows with the downscale factor
/// (antialiasing), bicubic with a = -0.5, weights in 22-bit fixed point and each pass rounded and clamped to 8 bits.
/// <see cref="BilinearNoAntialias"/> is tf.image.resize(method="bilinear", antialias=False) as Google's
/// vision_transformer and big_vision use it (= torch's interpolate(bilinear, align_corners=False)): float output.
/// </summary>
public static class Resize
{
    const int PrecisionBits = 32 - 8 - 2;

    public static Image Pil(Image image, int width, int height, Interpolation interpolation)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"size {width}x{height}");
        var img = image.To8Bit();
        bool needH = width != img.Width, needV = height != img.Height;
        if (!needH && !needV) return img;
        var (support, filter) = Filter(interpolation);
        var (vb, vk, vks) = Coefficients(img.Height, height, support, filter);
        int c = img.Channels;
        byte[] src = img.Pixels!;
        int srcW = img.Width, rows = img.Height, firstRow = 0;
        if (needH)
        {
            // Like Pillow, only the source rows the vertical pass will read are resampled horizontally.
            firstRow = vb[0];
            int lastRow = vb[2 * height - 2] + vb[2 * height - 1];
            if (!needV) { firstRow = 0; lastRow = img.Height; }
            rows = lastRow - firstRow;
            var (hb, hk, hks) = Coefficients(img.Width, width, support, filter);
            var tmp = new byte[(long)width * rows * c];
            for (int y = 0; y < rows; y++)
                HorizontalRow(src.AsSpan((y + firstRow) * srcW * c, srcW * c), tmp.AsSpan(y * width * c, width * c), c, hb, hk, hks);
            src = tmp; srcW = width;
        }
        if (!needV) return new Image(width, height, c, src);
        var dst = new byte[(long)width * height * c];
        var acc = new int[srcW * c];
        for (int y = 0; y < height; y++)
        {
            int ymin = vb[2 * y] - firstRow, n = vb[2 * y + 1];
            // Row by row: acc += row · weight, the same integer sum as Pillow's per-pixel loop, in a SIMD-friendly order.
            acc.AsSpan().Fill(1 << (PrecisionBits - 1));
            for (int i = 0; i < n; i++) AccumulateRow(src.AsSpan((ymin + i) * srcW * c, srcW * c), vk[y * vks + i], acc);
            var o = dst.AsSpan(y * srcW * c, srcW * c);
            for (int x = 0; x < o.Length; x++) o[x] = Clip8(acc[x]);
        }
        return new Image(width, height, c, dst);
    }

    static void HorizontalRow(ReadOnlySpan<byte> src, Span<byte> dst, int c, int[] bounds, int[] weights, int ksize)
    {
        int width = dst.Length / c;
        for (int x = 0; x < width; x++)
        {
            int xmin = bounds[2 * x], n = bounds[2 * x + 1];
            var k = weights.AsSpan(x * ksize, n);
            var s = src.Slice(xmin * c, n * c);
            if (c == 3)
            {
                int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                for (int i = 0; i < k.Length; i++) { int w = k[i]; s0 += s[3 * i] * w; s1 += s[3 * i + 1] * w; s2 += s[3 * i + 2] * w; }
                dst[3 * x] = Clip8(s0); dst[3 * x + 1] = Clip8(s1); dst[3 * x + 2] = Clip8(s2);
                continue;
            }
            for (int ch = 0; ch < c; ch++)
            {
                int ss = 1 << (PrecisionBits - 1);
                for (int i = 0; i < k.Length; i++) ss += s[i * c + ch] * k[i];
                dst[x * c + ch] = Clip8(ss);
            }
        }
    }

    static void AccumulateRow(ReadOnlySpan<byte> row, int weight, Span<int> acc)
    {
        int x = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var w = Vector256.Create(weight);
            for (; x + 16 <= row.Length; x += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector128.Create(row.Slice(x, 16)).ToVector256());
                var (a, b) = Vector256.Widen(lo);
                (Vector256.LoadUnsafe(ref acc[x]) + a.AsInt32() * w).StoreUnsafe(ref acc[x]);
                (Vector256.LoadUnsafe(ref acc[x + 8]) + b.AsInt32() * w).StoreUnsafe(ref acc[x + 8]);
            }
        }
        for (; x < row.Length; x++) acc[x] += row[x] * weight;
    }

    static byte Clip8(int v) => (byte)Math.Clamp(v >> PrecisionBits, 0, 255);

    static (double Support, Func<double, double> Filter) Filter(Interpolation i) => i switch
    {
        Interpolation.Bilinear => (1.0, x => { x = Math.Abs(x); return x < 1.0 ? 1.0 - x : 0.0; }),
        _ => (2.0, x =>
        {
            const double a = -0.5;
            x = Math.Abs(x);
            if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
            if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
            return 0.0;
        }),
    };

    /// <summary>Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output index (first input, count) and fixed-point weights.</summary>
    static (int[] Bounds, int[] Weights, int KSize) Coefficients(int inSize, int outSize, double filterSupport, Func<double, double> filter)
    {
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        double support = filterSupport * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var weights = new int[outSize * ksize];
        var k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale, ww = 0, ss = 1.0 / filterScale;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            for (int x = 0; x < xmax; x++) { k[x] = filter((x + xmin - center + 0.5) * ss); ww += k[x]; }
            for (int x = 0; x < xmax; x++)
            {
                double w = ww != 0 ? k[x] / ww : k[x];
                weights[xx * ksize + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
        }
        return (bounds, weights, ksize);
    }

    /// <summary>
    /// Half-pixel-centre bilinear without antialiasing, in float32 (0–255 scale), HWC: TensorFlow's tf.image.resize
    /// default and torch's interpolate(mode="bilinear", align_corners=False, antialias=False).
    /// </summary>
    public static float[] BilinearNoAntialias(Image image, int width, int height)
    {
        var img = image.To8Bit();
        int c = img.Channels, W = img.Width, H = img.Height;
        var src = img.Pixels!;
        var dst = new float[(long)width * height * c];
        float sx = (float)W / width, sy = (float)H / height;
        var x0 = new int[width]; var x1 = new int[width]; var lx = new float[width];
        for (int x = 0; x < width; x++) (x0[x], x1[x], lx[x]) = Source(x, sx, W);
        for (int y = 0; y < height; y++)
        {
            var (y0, y1, ly) = Source(y, sy, H);
            for (int x = 0; x < width; x++)
                for (int ch = 0; ch < c; ch++)
                {
                    float a = src[(y0 * W + x0[x]) * c + ch], b = src[(y0 * W + x1[x]) * c + ch];
                    float d = src[(y1 * W + x0[x]) * c + ch], e = src[(y1 * W + x1[x]) * c + ch];
                    dst[((long)y * width + x) * c + ch] = (1 - ly) * ((1 - lx[x]) * a + lx[x] * b) + ly * ((1 - lx[x]) * d + lx[x] * e);
                }
        }
        return dst;
    }

    static (int I0, int I1, float Lambda) Source(int dst, float scale, int inSize)
    {
        float s = Math.Max(scale * (dst + 0.5f) - 0.5f, 0f);
        int i0 = Math.Min((int)s, inSize - 1);
        int i1 = i0 < inSize - 1 ? i0 + 1 : i0;
        return (i0, i1, s - i0);
    }

    /// <summary>torchvision's Resize(int): the shorter side becomes <paramref name="size"/>, the longer int(size·long/short).</summary>
    public static (int Width, int Height) ShorterSideSize(int width, int height, int size)
    {
        if (width <= height) return (size, (int)((long)size * height / width));
        return ((int)((long)size * width / height), size);
    }
}
