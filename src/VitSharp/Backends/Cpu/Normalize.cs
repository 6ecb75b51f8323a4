using System.Runtime.InteropServices;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace VitSharp.Backends.Cpu;

/// <summary>Row-wise normalisations (one row of d floats at a time; the backend parallelises over rows).</summary>
internal static unsafe class Normalize
{
    /// <summary>y = (x − mean)/sqrt(var + eps)·γ + β, biased variance, like torch.nn.LayerNorm. y may be x.
    /// Two passes (mean, then squares of the centred row): one-pass E[x²]−E[x]² loses digits on the residual stream.</summary>
    public static void LayerNormRow(float* x, float* y, float* gamma, float* beta, int d, float eps)
    {
        var xr = new ReadOnlySpan<float>(x, d);
        var yr = new Span<float>(y, d);
        float mean = TensorPrimitives.Sum(xr) / d;
        TensorPrimitives.Subtract(xr, mean, yr);
        float var_ = TensorPrimitives.SumOfSquares(yr) / d;
        float rstd = 1f / MathF.Sqrt(var_ + eps);
        TensorPrimitives.Multiply(yr, rstd, yr);
        TensorPrimitives.FusedMultiplyAdd(yr, new ReadOnlySpan<float>(gamma, d), new ReadOnlySpan<float>(beta, d), yr);
    }

    /// <summary>row = softmax(row·scale) in place (scale &gt; 0, so the max of row gives the max of row·scale).</summary>
    public static void SoftmaxRow(float* row, int n, float scale)
    {
        var r = new Span<float>(row, n);
        float max = TensorPrimitives.Max(r);
        TensorPrimitives.Subtract(r, max, r);
        TensorPrimitives.Multiply(r, scale, r);
        TensorPrimitives.Exp(r, r);
        TensorPrimitives.Multiply(r, 1f / TensorPrimitives.Sum(r), r);
    }
}

/// <summary>A per-thread scratch buffer of floats (attention scores), grown on demand and freed with the thread.</summary>
internal sealed unsafe class Scratch
{
    [ThreadStatic] private static Scratch? _mine;
    private float* _p;
    private long _cap;

    public static float* Floats(long n)
    {
        var s = _mine ??= new Scratch();
        if (s._cap < n) { NativeMemory.AlignedFree(s._p); s._p = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 64); s._cap = n; }
        return s._p;
    }

    ~Scratch() => NativeMemory.AlignedFree(_p);
}
