using System.Runtime.CompilerServices;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// The convolutional tokenizer's ops on the host (see <see cref="IBackend.Im2Col3x3"/>): unfold, max pooling and their
/// backwards, over the cores by image rows. The convolution itself is the unfold plus the packed GEMM
/// (<see cref="IBackend.Conv3x3"/>'s default body). Every output element is written by one thread in a fixed order, so
/// results do not depend on the thread count.
/// </summary>
public sealed unsafe partial class CpuBackend
{
    public void Im2Col3x3(Tensor x, Tensor cols, int height, int width, bool channelsFirst)
    {
        int batch = x.Dim(0), c = channelsFirst ? x.Dim(1) : x.Dim(-1), h = height, w = width, k = c * 9;
        if ((channelsFirst ? x.Rank != 4 || x.Dim(2) != h || x.Dim(3) != w : x.Length != (long)batch * h * w * c) || cols.Length != (long)batch * h * w * k)
            throw new ArgumentException($"Im2Col3x3: {x} ({h}×{w}) into {cols}");
        float* xp = x.Data, cp = cols.Data;
        // One task per image row: its w output rows of c·9 columns.
        CpuThreads.ForRange(batch * h, 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int r0, int r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int b = r / h, y = r % h;
                float* dst = cp + (long)r * w * k;
                new Span<float>(dst, w * k).Clear();
                for (int kh = 0; kh < 3; kh++)
                {
                    int iy = y + kh - 1;
                    if (iy < 0 || iy >= h) continue;
                    for (int kw = 0; kw < 3; kw++)
                    {
                        int off = kh * 3 + kw, x0 = Math.Max(0, 1 - kw), x1 = Math.Min(w, w + 1 - kw);
                        if (channelsFirst)
                            for (int ch = 0; ch < c; ch++)
                            {
                                float* src = xp + (((long)b * c + ch) * h + iy) * w + kw - 1;
                                float* d = dst + ch * 9 + off;
                                for (int xx = x0; xx < x1; xx++) d[(long)xx * k] = src[xx];
                            }
                        else
                            for (int xx = x0; xx < x1; xx++)
                            {
                                float* src = xp + (((long)b * h + iy) * w + xx + kw - 1) * c;
                                float* d = dst + (long)xx * k + off;
                                for (int ch = 0; ch < c; ch++) d[ch * 9] = src[ch];
                            }
                    }
                }
            }
        });
    }

    public void MaxPool3x3s2(Tensor x, Tensor y, int height, int width)
    {
        int batch = x.Dim(0), c = x.Dim(-1), h = height, w = width, ho = HostOps.PooledSize(h), wo = HostOps.PooledSize(w);
        if (x.Length != (long)batch * h * w * c || y.Length != (long)batch * ho * wo * c) throw new ArgumentException($"MaxPool3x3s2: {x} ({h}×{w}) into {y}");
        float* xp = x.Data, yp = y.Data;
        CpuThreads.ForRange(batch * ho, 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int r0, int r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int b = r / ho, oy = r % ho;
                for (int ox = 0; ox < wo; ox++)
                {
                    float* dst = yp + ((long)r * wo + ox) * c;
                    bool first = true;
                    for (int iy = Math.Max(0, 2 * oy - 1); iy <= Math.Min(h - 1, 2 * oy + 1); iy++)
                        for (int ix = Math.Max(0, 2 * ox - 1); ix <= Math.Min(w - 1, 2 * ox + 1); ix++)
                        {
                            float* src = xp + (((long)b * h + iy) * w + ix) * c;
                            if (first) { new ReadOnlySpan<float>(src, c).CopyTo(new Span<float>(dst, c)); first = false; }
                            else for (int ch = 0; ch < c; ch++) if (src[ch] > dst[ch]) dst[ch] = src[ch];
                        }
                }
            }
        });
    }

    public void MaxPool3x3s2Backward(Tensor dy, Tensor x, Tensor dx, int height, int width)
    {
        int batch = x.Dim(0), c = x.Dim(-1), h = height, w = width, ho = HostOps.PooledSize(h), wo = HostOps.PooledSize(w);
        if (x.Length != (long)batch * h * w * c || dy.Length != (long)batch * ho * wo * c || dx.Length != x.Length)
            throw new ArgumentException($"MaxPool3x3s2Backward: dy {dy}, x {x} ({h}×{w}) -> {dx}");
        float* dyp = dy.Data, xp = x.Data, dxp = dx.Data;
        // One task per image: windows in row-major order scatter into the image's dx (overlaps summed in that order).
        CpuThreads.For(batch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int b) =>
        {
            long xb = (long)b * h * w * c;
            new Span<float>(dxp + xb, h * w * c).Clear();
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                {
                    float* g = dyp + (((long)b * ho + oy) * wo + ox) * c;
                    for (int ch = 0; ch < c; ch++)
                    {
                        long best = -1;
                        float m = 0;
                        for (int iy = Math.Max(0, 2 * oy - 1); iy <= Math.Min(h - 1, 2 * oy + 1); iy++)
                            for (int ix = Math.Max(0, 2 * ox - 1); ix <= Math.Min(w - 1, 2 * ox + 1); ix++)
                            {
                                long at = xb + ((long)iy * w + ix) * c + ch;
                                if (best < 0 || xp[at] > m) { m = xp[at]; best = at; }
                            }
                        dxp[best] += g[ch];
                    }
                }
        });
    }

    public void Im2Col3x3Backward(Tensor dcols, Tensor dx, int height, int width)
    {
        int batch = dx.Dim(0), c = dx.Dim(-1), h = height, w = width, k = c * 9;
        if (dx.Length != (long)batch * h * w * c || dcols.Length != (long)batch * h * w * k)
            throw new ArgumentException($"Im2Col3x3Backward: {dcols} -> {dx} ({h}×{w})");
        float* gp = dcols.Data, dxp = dx.Data;
        // A gather: each pixel sums the nine column entries that copied it, in (kh, kw) order.
        CpuThreads.ForRange(batch * h, 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int r0, int r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int b = r / h, y = r % h;
                float* dst = dxp + (long)r * w * c;
                new Span<float>(dst, w * c).Clear();
                for (int kh = 0; kh < 3; kh++)
                {
                    int oy = y - kh + 1;
                    if (oy < 0 || oy >= h) continue;
                    for (int kw = 0; kw < 3; kw++)
                    {
                        int off = kh * 3 + kw;
                        for (int xx = Math.Max(0, kw - 1); xx < Math.Min(w, w + kw - 1); xx++)
                        {
                            float* src = gp + (((long)b * h + oy) * w + xx - kw + 1) * k + off;
                            float* d = dst + (long)xx * c;
                            for (int ch = 0; ch < c; ch++) d[ch] += src[ch * 9];
                        }
                    }
                }
            }
        });
    }
}
