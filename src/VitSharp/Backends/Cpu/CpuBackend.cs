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
        int k = x.Dim(-1), n = w.Dim(0);
        if (w.Dim(1) != k) throw new ArgumentException($"Linear: input {x} does not match weight {w}");
        if (y.Dim(-1) != n) throw new ArgumentException($"Linear: output {y} does not match weight {w}");
        int m = checked((int)(x.Length / k));
        if (y.Length != (long)m * n) throw new ArgumentException($"Linear: output {y} for input {x}");
        float* yp = y.Data;
        Gemm.Run(false, true, m, n, k, x.Data, k, w.Data, k, yp, n, accumulate);
        if (bias is not null || act != Activation.None)
        {
            float* bp = bias is null ? null : bias.Data;
            ParallelRows(m, r =>
            {
                var row = new Span<float>(yp + (long)r * n, n);
                if (bp != null) TensorPrimitives.Add(row, new ReadOnlySpan<float>(bp, n), row);
                if (act != Activation.None) Activations.Apply(act, row, row);
            });
        }
    }

    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y)
    {
        int d = x.Dim(-1);
        int rows = checked((int)(x.Length / d));
        float* xp = x.Data, yp = y.Data, g = gamma.Data, b = beta.Data;
        ParallelRows(rows, r =>
        {
            var xr = new ReadOnlySpan<float>(xp + (long)r * d, d);
            var yr = new Span<float>(yp + (long)r * d, d);
            float mean = TensorPrimitives.Sum(xr) / d;
            double var_ = 0;
            for (int i = 0; i < d; i++) { double t = xr[i] - mean; var_ += t * t; }
            float rstd = (float)(1.0 / Math.Sqrt(var_ / d + eps));
            for (int i = 0; i < d; i++) yr[i] = (xr[i] - mean) * rstd * g[i] + b[i];
        });
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        if (a.Length != b.Length || a.Length != y.Length) throw new ArgumentException($"Add: {a} + {b} -> {y}");
        TensorPrimitives.Add(a.Span, b.Span, y.Span);
    }

    public void Apply(Activation act, Tensor x, Tensor y)
    {
        float* xp = x.Data, yp = y.Data;
        int d = x.Dim(-1);
        int rows = checked((int)(x.Length / d));
        ParallelRows(rows, r => Activations.Apply(act, new ReadOnlySpan<float>(xp + (long)r * d, d), new Span<float>(yp + (long)r * d, d)));
    }

    public void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null)
    {
        int batch = qkv.Dim(0), n = qkv.Dim(1), width = qkv.Dim(2) / 3, hd = width / heads;
        if (qkv.Dim(2) != 3 * heads * hd) throw new ArgumentException($"Attention: {qkv} is not 3·{heads} heads wide");
        float* qp = qkv.Data, yp = y.Data;
        float* pp = probs is null ? null : probs.Data;
        int stride = 3 * width;
        Parallel.For(0, batch * heads, bh =>
        {
            int b = bh / heads, h = bh % heads;
            float* q = qp + (long)b * n * stride + h * hd;
            float* k = q + width;
            float* v = q + 2 * width;
            float* o = yp + (long)b * n * width + h * hd;
            var scores = new float[n];
            var acc = new float[hd];
            for (int i = 0; i < n; i++)
            {
                float* qi = q + (long)i * stride;
                for (int j = 0; j < n; j++) scores[j] = Gemm.Dot(qi, k + (long)j * stride, hd) * scale;
                float max = TensorPrimitives.Max(scores);
                TensorPrimitives.Subtract(scores, max, scores);
                TensorPrimitives.Exp(scores, scores);
                float inv = 1f / TensorPrimitives.Sum(scores);
                TensorPrimitives.Multiply(scores, inv, scores);
                if (pp != null) scores.CopyTo(new Span<float>(pp + ((long)bh * n + i) * n, n));
                Array.Clear(acc);
                for (int j = 0; j < n; j++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + (long)j * stride, hd), scores[j], acc, acc);
                acc.CopyTo(new Span<float>(o + (long)i * width, hd));
            }
        });
    }

    public void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch)
    {
        int batch = images.Dim(0), c = images.Dim(1), h = images.Dim(2), wd = images.Dim(3);
        int gh = h / patch, gw = wd / patch, np = gh * gw, kdim = c * patch * patch;
        using var cols = Tensor.Host(batch * np, kdim);
        float* ip = images.Data, cp = cols.Data;
        // Unfold each patch into a row in (C, P, P) order, the order of the conv weight's flattened input dims.
        ParallelRows(batch * np, r =>
        {
            int b = r / np, p = r % np, py = p / gw, px = p % gw;
            float* dst = cp + (long)r * kdim;
            for (int ch = 0; ch < c; ch++)
                for (int dy = 0; dy < patch; dy++)
                {
                    float* src = ip + (((long)b * c + ch) * h + py * patch + dy) * wd + px * patch;
                    new ReadOnlySpan<float>(src, patch).CopyTo(new Span<float>(dst + (ch * patch + dy) * patch, patch));
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
        ParallelRows(batch, b =>
        {
            float* xs = xp + (long)b * a * c, ys = yp + (long)b * a * c;
            for (int i = 0; i < a; i++)
                for (int j = 0; j < c; j++) ys[(long)j * a + i] = xs[(long)i * c + j];
        });
    }

    public void Dispose() { }

    private static void ParallelRows(int rows, Action<int> body)
    {
        if (rows < 64) { for (int r = 0; r < rows; r++) body(r); return; }
        Parallel.For(0, rows, body);
    }
}

internal static class Check
{
    public static void Host(Tensor t)
    {
        if (!t.Device.IsCpu) throw new ArgumentException($"CPU backend got a tensor on {t.Device}");
    }
}
