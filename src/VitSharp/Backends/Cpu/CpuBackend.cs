using System.Runtime.CompilerServices;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cpu;

/// <summary>Host backend: fp32 compute with SIMD kernels. Work runs synchronously on the calling thread plus workers.</summary>
public sealed unsafe partial class CpuBackend : IBackend
{
    public static readonly CpuBackend Instance = new();

    public Device Device => Device.Cpu;
    public DType ComputeType => DType.F32;

    public Tensor Allocate(int[] shape, DType dtype) => Tensor.Host(shape, dtype);

    public void CopyFromHost(ReadOnlySpan<float> src, Tensor dst)
    {
        Check.Host(dst);
        if (src.Length != dst.Length) throw new ArgumentException($"copy of {src.Length} values into {dst}");
        switch (dst.DType)
        {
            case DType.F32: src.CopyTo(dst.Span); break;
            case DType.BF16: BFloat16Convert.FromFloat(src, new Span<ushort>((void*)dst.Pointer, src.Length)); break;
            default: throw new NotSupportedException($"host copy into {dst.DType}");
        }
    }

    public void CopyToHost(Tensor src, Span<float> dst)
    {
        Check.Host(src);
        if (dst.Length != src.Length) throw new ArgumentException($"copy of {src} into {dst.Length} values");
        switch (src.DType)
        {
            case DType.F32: src.Span.CopyTo(dst); break;
            case DType.BF16: BFloat16Convert.ToFloat(new ReadOnlySpan<ushort>((void*)src.Pointer, dst.Length), dst); break;
            default: throw new NotSupportedException($"host copy from {src.DType}");
        }
    }

    public void Synchronize() { }

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false)
    {
        var (m, n, k) = LinearShape.Check(x, w, y);
        // Bias and activation are applied to each output tile right after its last K slice, while it is in L1.
        float* bp = bias is null ? null : bias.Data;
        if (Int8For(w, n, k) is { } q) { Int8Gemm.Run(m, x.Data, k, q, y.Data, n, accumulate, bp, act); return; }
        if (PackedFor(w, n, k) is { } packed) Gemm.Run(m, x.Data, k, packed, y.Data, n, accumulate, bp, act);
        else Gemm.Run(false, true, m, n, k, x.Data, k, w.Data, k, y.Data, n, accumulate, bp, act);
    }

    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y)
    {
        int d = x.Dim(-1);
        int rows = checked((int)(x.Length / d));
        if (y.Length != x.Length || gamma.Length != d || beta.Length != d) throw new ArgumentException($"LayerNorm: {x} -> {y}");
        float* xp = x.Data, yp = y.Data, g = gamma.Data, b = beta.Data;
        // 64K floats per chunk: at batch 1 (≈75K floats, tens of µs) waking a worker costs more than it saves.
        CpuThreads.ForRange(rows, Math.Max(1, (1 << 16) / Math.Max(1, d)), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int r0, int r1) =>
        {
            for (int r = r0; r < r1; r++) Normalize.LayerNormRow(xp + (long)r * d, yp + (long)r * d, g, b, d, eps);
        });
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        if (a.Length != b.Length || a.Length != y.Length) throw new ArgumentException($"Add: {a} + {b} -> {y}");
        float* ap = a.Data, bp = b.Data, yp = y.Data;
        // Memory-bound: split into chunks of at least 16K floats so both cores' bandwidth is used on large tensors.
        CpuThreads.ForRange(checked((int)a.Length), 1 << 14, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int s, int e) =>
            VectorOps.Add(ap + s, bp + s, yp + s, e - s));
    }

    public void Apply(Activation act, Tensor x, Tensor y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"Apply: {x} -> {y}");
        float* xp = x.Data, yp = y.Data;
        CpuThreads.ForRange(checked((int)x.Length), 1 << 13, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int s, int e) =>
            Activations.Apply(act, new ReadOnlySpan<float>(xp + s, e - s), new Span<float>(yp + s, e - s)));
    }

    public void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null)
    {
        int batch = qkv.Dim(0), n = qkv.Dim(1), width = qkv.Dim(2) / 3, hd = width / heads;
        if (qkv.Dim(2) != 3 * heads * hd) throw new ArgumentException($"Attention: {qkv} is not 3·{heads} heads wide");
        if (y.Length != (long)batch * n * width) throw new ArgumentException($"Attention: output {y} for {qkv}");
        if (probs is not null && probs.Length != (long)batch * heads * n * n) throw new ArgumentException($"Attention: probs {probs}");
        float* qp = qkv.Data, yp = y.Data;
        float* pp = probs is null ? null : probs.Data;
        if (FusedAttention.Supports(hd))
        {
            FusedAttention.Run(qp, yp, pp, batch, n, heads, hd, scale);
            return;
        }
        int stride = 3 * width;
        // Other head widths: one (batch, head) per task; inside it both products are GEMMs on strided views of qkv (they run serially
        // on the task's thread), so Q·Kᵀ and P·V use the packed micro-kernel instead of per-element dot products.
        CpuThreads.For(batch * heads, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int bh) =>
        {
            int b = bh / heads, h = bh % heads;
            float* q = qp + (long)b * n * stride + h * hd;
            float* k = q + width;
            float* v = q + 2 * width;
            float* o = yp + (long)b * n * width + h * hd;
            float* s = pp != null ? pp + (long)bh * n * n : Scratch.Floats((long)n * n);
            Gemm.Run(false, true, n, n, hd, q, stride, k, stride, s, n, false);
            for (int i = 0; i < n; i++) Normalize.SoftmaxRow(s + (long)i * n, n, scale);
            Gemm.Run(false, false, n, hd, n, s, n, v, stride, o, width, false);
        });
    }

    public void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch)
    {
        int batch = images.Dim(0), c = images.Dim(1), h = images.Dim(2), wd = images.Dim(3);
        int gh = h / patch, gw = wd / patch, np = gh * gw, kdim = c * patch * patch;
        using var cols = Tensor.Host(batch * np, kdim);
        float* ip = images.Data, cp = cols.Data;
        // Unfold each patch into a row in (C, P, P) order, the order of the conv weight's flattened input dims.
        CpuThreads.ForRange(batch * np, 16, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int r0, int r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int b = r / np, p = r % np, py = p / gw, px = p % gw;
                float* dst = cp + (long)r * kdim;
                for (int ch = 0; ch < c; ch++)
                    for (int dy = 0; dy < patch; dy++)
                    {
                        float* src = ip + (((long)b * c + ch) * h + py * patch + dy) * wd + px * patch;
                        Buffer.MemoryCopy(src, dst + (ch * patch + dy) * patch, patch * 4L, patch * 4L);
                    }
            }
        });
        Linear(cols, w.View(w.Dim(0), kdim), bias, y.View(batch * np, w.Dim(0)));
    }

    public void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x)
    {
        int batch = patches.Dim(0), np = patches.Dim(1), d = patches.Dim(2), t = x.Dim(1);
        int prefix = cls is null ? 0 : 1;
        float* pp = patches.Data, xp = x.Data, ps = pos.Data;
        for (int b = 0; b < batch; b++)
        {
            float* xb = xp + (long)b * t * d;
            if (cls is not null) TensorPrimitives.Add(cls.Span, new ReadOnlySpan<float>(ps, d), new Span<float>(xb, d));
            TensorPrimitives.Add(new ReadOnlySpan<float>(pp + (long)b * np * d, np * d),
                new ReadOnlySpan<float>(ps + prefix * d, np * d), new Span<float>(xb + prefix * d, np * d));
        }
    }

    public void MeanTokens(Tensor x, int start, Tensor y)
    {
        int batch = x.Dim(0), t = x.Dim(1), d = x.Dim(2);
        float* xp = x.Data, yp = y.Data;
        for (int b = 0; b < batch; b++)
        {
            var yr = new Span<float>(yp + (long)b * d, d);
            yr.Clear();
            for (int i = start; i < t; i++) TensorPrimitives.Add(yr, new ReadOnlySpan<float>(xp + ((long)b * t + i) * d, d), yr);
            TensorPrimitives.Multiply(yr, 1f / (t - start), yr);
        }
    }

    public void SelectToken(Tensor x, int index, Tensor y)
    {
        int batch = x.Dim(0), t = x.Dim(1), d = x.Dim(2);
        for (int b = 0; b < batch; b++)
            new ReadOnlySpan<float>(x.Data + ((long)b * t + index) * d, d).CopyTo(new Span<float>(y.Data + (long)b * d, d));
    }

    public void Transpose12(Tensor x, Tensor y)
    {
        int batch = x.Dim(0), a = x.Dim(1), c = x.Dim(2);
        float* xp = x.Data, yp = y.Data;
        // 16×16 blocks so reads and writes both stay within a few cache lines.
        int aBlocks = (a + 15) / 16;
        CpuThreads.For(batch * aBlocks, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int t) =>
        {
            int b = t / aBlocks, i0 = t % aBlocks * 16, i1 = Math.Min(a, i0 + 16);
            float* xs = xp + (long)b * a * c, ys = yp + (long)b * a * c;
            for (int j0 = 0; j0 < c; j0 += 16)
                for (int i = i0; i < i1; i++)
                    for (int j = j0; j < Math.Min(c, j0 + 16); j++) ys[(long)j * a + i] = xs[(long)i * c + j];
        });
    }

    public void Dispose() { }
}

internal static class Check
{
    public static void Host(Tensor t)
    {
        if (!t.Device.IsCpu) throw new ArgumentException($"CPU backend got a tensor on {t.Device}");
    }
}
