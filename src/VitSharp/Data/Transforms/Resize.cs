using System.Runtime.Intrinsics;

namespace VitSharp.Data.Transforms;

/// <summary>The resampling filter of a resize.</summary>
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
        if (width == img.Width && height == img.Height) return img;
        var dst = new byte[(long)width * height * img.Channels];
        PilInto(img, 0, 0, img.Width, img.Height, dst, width, height, interpolation);
        return new Image(width, height, img.Channels, dst);
    }

    /// <summary>
    /// <see cref="Pil"/> of the box (<paramref name="x0"/>, <paramref name="y0"/>, <paramref name="w"/>, <paramref name="h"/>)
    /// of an 8-bit image, written into <paramref name="dst"/> (width × height × channels): the same integers as
    /// <c>Pil(image.Crop(box), width, height)</c> without the crop's copy or the output's allocation; the intermediate
    /// rows live in a per-thread buffer. For the training loader's random resized crop.
    /// </summary>
    public static void PilInto(Image image, int x0, int y0, int w, int h, Span<byte> dst, int width, int height, Interpolation interpolation)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"size {width}x{height}");
        var px = image.Pixels ?? throw new ArgumentException("an 8-bit image is needed", nameof(image));
        if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || x0 + w > image.Width || y0 + h > image.Height)
            throw new ArgumentOutOfRangeException(nameof(x0), $"box ({x0},{y0},{w},{h}) outside a {image.Width}x{image.Height} image");
        int c = image.Channels, stride = image.Width * c, rowOut = width * c;
        if (dst.Length < (long)rowOut * height) throw new ArgumentException("destination too small", nameof(dst));
        ReadOnlySpan<byte> src = px.AsSpan(y0 * stride + x0 * c);
        bool needH = width != w, needV = height != h;
        if (!needH && !needV)
        {
            for (int y = 0; y < h; y++) src.Slice(y * stride, w * c).CopyTo(dst.Slice(y * rowOut, rowOut));
            return;
        }
        var (support, filter) = Filter(interpolation);
        int srcStride = stride, firstRow = 0;
        int[] vb = [], vk = [];
        int vks = 0;
        if (needV) (vb, vk, vks) = Coefficients(h, height, support, filter);
        if (needH)
        {
            // Like Pillow, only the source rows the vertical pass will read are resampled horizontally.
            int lastRow = h;
            if (needV) { firstRow = vb[0]; lastRow = vb[2 * height - 2] + vb[2 * height - 1]; }
            int rows = lastRow - firstRow;
            var (hb, hk, hks) = Coefficients(w, width, support, filter);
            Span<byte> tmp = needV ? Rows(rowOut * rows) : dst;
            for (int y = 0; y < rows; y++)
                HorizontalRow(src.Slice((y + firstRow) * stride, w * c), tmp.Slice(y * rowOut, rowOut), c, hb, hk, hks);
            if (!needV) return;
            src = tmp;
            srcStride = rowOut;
        }
        var acc = Acc(rowOut);
        for (int y = 0; y < height; y++)
        {
            int ymin = vb[2 * y] - firstRow, n = vb[2 * y + 1];
            // Row by row: acc += row · weight, the same integer sum as Pillow's per-pixel loop, in a SIMD-friendly order.
            acc.Fill(1 << (PrecisionBits - 1));
            for (int i = 0; i < n; i++) AccumulateRow(src.Slice((ymin + i) * srcStride, rowOut), vk[y * vks + i], acc);
            var o = dst.Slice(y * rowOut, rowOut);
            for (int x = 0; x < o.Length; x++) o[x] = Clip8(acc[x]);
        }
    }

    [ThreadStatic] private static byte[]? _rows;
    [ThreadStatic] private static int[]? _acc;

    private static Span<byte> Rows(int n) => (_rows is { } r && r.Length >= n ? r : _rows = new byte[n]).AsSpan(0, n);
    private static Span<int> Acc(int n) => (_acc is { } a && a.Length >= n ? a : _acc = new int[n]).AsSpan(0, n);

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
