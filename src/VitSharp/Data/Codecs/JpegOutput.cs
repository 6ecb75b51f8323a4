using System.Runtime.Intrinsics;

namespace VitSharp.Data.Codecs;

/// <summary>
/// Coefficients → pixels the way libjpeg-turbo's djpeg does by default: islow IDCT per block, chroma upsampling
/// (jdsample.c: triangular "fancy" filters for 2×1, 1×2 and 2×2 ratios, replication otherwise; edges replicate the last
/// real row/column), then jdcolor.c's 16-bit fixed-point YCbCr→RGB tables.
/// </summary>
internal static class JpegOutput
{
    /// <summary>For tests: the scalar IDCT, upsampling and colour conversion even where AVX2 is available.</summary>
    internal static bool ForceScalar;

    public static Image Build(JpegState st)
    {
        if (!st.FrameSeen) throw st.Error("no SOF marker");
        int w = st.Width, h = st.Height, n = st.Components.Length;
        var planes = new byte[n][];
        for (int i = 0; i < n; i++)
        {
            var c = st.Components[i];
            if (st.MaxH % c.H != 0 || st.MaxV % c.V != 0) throw st.Error($"fractional sampling ({c.H}x{c.V} of {st.MaxH}x{st.MaxV}) is not supported");
            var plane = Idct(c);
            planes[i] = Upsample(plane, c.BlocksPerLine * 8, c, st);
            if (planes[i] != plane) System.Buffers.ArrayPool<byte>.Shared.Return(plane);
        }
        if (n == 1) return new Image(w, h, 1, planes[0]);
        var rgb = GC.AllocateUninitializedArray<byte>(w * h * 3);
        if (n == 3)
        {
            if (IsRgb(st)) Interleave(planes, rgb);
            else JpegColor.YccToRgb(planes[0], planes[1], planes[2], rgb, simd: !ForceScalar);
        }
        else JpegColor.CmykToRgb(planes, rgb, ycck: st.SawAdobe && st.AdobeTransform == 2);
        return new Image(w, h, 3, rgb);
    }

    /// <summary>libjpeg's default_decompress_parms: JFIF means YCbCr; else Adobe's transform flag; else component ids 'R','G','B'.</summary>
    static bool IsRgb(JpegState st)
    {
        if (st.SawJfif) return false;
        if (st.SawAdobe) return st.AdobeTransform == 0;
        var c = st.Components;
        return c[0].Id == 'R' && c[1].Id == 'G' && c[2].Id == 'B';
    }

    static void Interleave(byte[][] p, byte[] rgb)
    {
        for (int i = 0, n = p[0].Length; i < n; i++) { rgb[3 * i] = p[0][i]; rgb[3 * i + 1] = p[1][i]; rgb[3 * i + 2] = p[2][i]; }
    }

    static byte[] Idct(JpegComponent c)
    {
        int stride = c.BlocksPerLine * 8;
        var plane = System.Buffers.ArrayPool<byte>.Shared.Rent(stride * c.BlocksPerColumn * 8); // every sample read is written first
        ReadOnlySpan<ushort> q = c.Quant ?? new ushort[64];
        // Only blocks that hold image samples: the MCU padding beyond them is never displayed.
        bool simd = JpegIdctSimd.IsSupported && !ForceScalar;
        int bw = Math.Min(c.BlocksPerLine, (c.Width + 7) / 8), bh = Math.Min(c.BlocksPerColumn, (c.Height + 7) / 8);
        for (int by = 0; by < bh; by++)
            for (int bx = 0; bx < bw; bx++)
            {
                long b = (long)by * c.BlocksPerLine + bx;
                var blk = c.Coefs.AsSpan((int)(b * 64), 64);
                var dst = plane.AsSpan((int)((long)by * 8 * stride + bx * 8));
                if (simd) JpegIdctSimd.Transform(blk, q, dst, stride);
                else JpegIdct.Transform(blk, q, dst, stride);
            }
        return plane;
    }

    /// <summary>A full-resolution w×h plane from the component's plane (row stride <paramref name="stride"/>).</summary>
    static byte[] Upsample(byte[] src, int stride, JpegComponent c, JpegState st)
    {
        int w = st.Width, h = st.Height, hr = st.MaxH / c.H, vr = st.MaxV / c.V;
        var dst = GC.AllocateUninitializedArray<byte>(w * h);
        int cw = c.Width, ch = c.Height;
        if (hr == 1 && vr == 1 && stride == w && src.Length == w * h) return src;
        if (hr == 1 && vr == 1)
        {
            for (int y = 0; y < h; y++) Buffer.BlockCopy(src, y * stride, dst, y * w, w);
        }
        else if (hr == 2 && vr == 1 && cw > 2)
        {
            var padded = new short[cw + 2];
            for (int y = 0; y < h; y++)
            {
                if (!JpegUpsampleSimd.IsSupported || ForceScalar) { FancyH2(src.AsSpan(y * stride, cw), dst.AsSpan(y * w, w)); continue; }
                var row = src.AsSpan(y * stride, cw);
                for (int x = 0; x < cw; x++) padded[x + 1] = row[x];
                padded[0] = padded[1]; padded[cw + 1] = padded[cw];
                JpegUpsampleSimd.Horizontal(padded, cw, dst.AsSpan(y * w, w), 2, 1, 2);
            }
        }
        else if (hr == 1 && vr == 2)
        {
            for (int y = 0; y < h; y++)
            {
                int iy = y >> 1, ny = (y & 1) == 0 ? Math.Max(iy - 1, 0) : Math.Min(iy + 1, ch - 1);
                int bias = (y & 1) == 0 ? 1 : 2;
                var a = src.AsSpan(iy * stride, w); var b = src.AsSpan(ny * stride, w); var o = dst.AsSpan(y * w, w);
                for (int x = 0; x < w; x++) o[x] = (byte)((a[x] * 3 + b[x] + bias) >> 2);
            }
        }
        else if (hr == 2 && vr == 2 && cw > 2)
        {
            var sums = new int[cw];
            var padded = new short[cw + 2];
            for (int y = 0; y < h; y++)
            {
                int iy = y >> 1, ny = (y & 1) == 0 ? Math.Max(iy - 1, 0) : Math.Min(iy + 1, ch - 1);
                var a = src.AsSpan(iy * stride, cw); var b = src.AsSpan(ny * stride, cw);
                if (!JpegUpsampleSimd.IsSupported || ForceScalar)
                {
                    for (int x = 0; x < cw; x++) sums[x] = a[x] * 3 + b[x];
                    FancyH2V2(sums, dst.AsSpan(y * w, w));
                    continue;
                }
                ColumnSums(a, b, padded.AsSpan(1, cw));
                padded[0] = padded[1]; padded[cw + 1] = padded[cw];
                JpegUpsampleSimd.Horizontal(padded, cw, dst.AsSpan(y * w, w), 4, 8, 7);
            }
        }
        else
        {
            for (int y = 0; y < h; y++)
            {
                var row = src.AsSpan(y / vr * stride);
                var o = dst.AsSpan(y * w, w);
                for (int x = 0; x < w; x++) o[x] = row[x / hr];
            }
        }
        return dst;
    }

    /// <summary>3·nearer row + farther row, the vertical half of 2×2 fancy upsampling (fits in 16 bits: at most 1020).</summary>
    static void ColumnSums(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<short> o)
    {
        int n = o.Length, x = 0;
        for (; x + 16 <= n; x += 16)
        {
            var va = Vector256.WidenLower(Vector256.Create(Vector128.Create(a.Slice(x, 16)), Vector128<byte>.Zero)).AsInt16();
            var vb = Vector256.WidenLower(Vector256.Create(Vector128.Create(b.Slice(x, 16)), Vector128<byte>.Zero)).AsInt16();
            (va * 3 + vb).CopyTo(o.Slice(x, 16));
        }
        for (; x < n; x++) o[x] = (short)(a[x] * 3 + b[x]);
    }

    /// <summary>jdsample.c h2v1_fancy_upsample: each output is ¾ of the nearer input and ¼ of the farther one.</summary>
    static void FancyH2(ReadOnlySpan<byte> s, Span<byte> o)
    {
        int n = s.Length, w = o.Length;
        for (int i = 0; i < n; i++)
        {
            int x = 2 * i;
            if (x >= w) break;
            int v = s[i] * 3;
            o[x] = (byte)((v + s[Math.Max(i - 1, 0)] + 1) >> 2);
            if (x + 1 < w) o[x + 1] = (byte)((v + s[Math.Min(i + 1, n - 1)] + 2) >> 2);
        }
    }

    /// <summary>jdsample.c h2v2_fancy_upsample's horizontal half, on column sums 3·nearer row + farther row.</summary>
    static void FancyH2V2(ReadOnlySpan<int> s, Span<byte> o)
    {
        int n = s.Length, w = o.Length;
        for (int i = 0; i < n; i++)
        {
            int x = 2 * i;
            if (x >= w) break;
            int v = s[i] * 3;
            o[x] = (byte)((v + s[Math.Max(i - 1, 0)] + 8) >> 4);
            if (x + 1 < w) o[x + 1] = (byte)((v + s[Math.Min(i + 1, n - 1)] + 7) >> 4);
        }
    }
}
