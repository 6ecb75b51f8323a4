using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// Row-wise normalisations (one row of d floats at a time; the backend parallelises over rows). Written with Vector512
/// directly and compiled fully optimised on first call: generic TensorPrimitives code starts in the JIT's unoptimised
/// tier and stayed there for the first few ViT forwards (LayerNorm ran 20× slower).
/// </summary>
internal static unsafe class Normalize
{
    /// <summary>y = (x − mean)/sqrt(var + eps)·γ + β, biased variance, like torch.nn.LayerNorm. y may be x.
    /// Two passes (mean, then squares of the centred row): one-pass E[x²]−E[x]² loses digits on the residual stream.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LayerNormRow(float* x, float* y, float* gamma, float* beta, int d, float eps) =>
        LayerNormRow(x, y, gamma, beta, d, eps, out _, out _);

    /// <summary>The same, also returning the row's mean and 1/std (what training saves for the backward): inference and
    /// training normalise with one kernel, so a training forward computes exactly the inference forward's LayerNorm.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LayerNormRow(float* x, float* y, float* gamma, float* beta, int d, float eps, out float meanOut, out float rstdOut)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> s0 = default, s1 = default;
            for (; i <= d - 32; i += 32) { s0 += Vector512.Load(x + i); s1 += Vector512.Load(x + i + 16); }
            for (; i <= d - 16; i += 16) s0 += Vector512.Load(x + i);
            sum = Vector512.Sum(s0 + s1);
        }
        for (; i < d; i++) sum += x[i];
        float mean = sum / d;

        i = 0;
        float sq = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var m = Vector512.Create(mean);
            Vector512<float> s0 = default, s1 = default;
            for (; i <= d - 32; i += 32)
            {
                var a = Vector512.Load(x + i) - m; var b = Vector512.Load(x + i + 16) - m;
                s0 = Vector512.FusedMultiplyAdd(a, a, s0); s1 = Vector512.FusedMultiplyAdd(b, b, s1);
            }
            for (; i <= d - 16; i += 16) { var a = Vector512.Load(x + i) - m; s0 = Vector512.FusedMultiplyAdd(a, a, s0); }
            sq = Vector512.Sum(s0 + s1);
        }
        for (; i < d; i++) sq += (x[i] - mean) * (x[i] - mean);
        float rstd = 1f / MathF.Sqrt(sq / d + eps);

        i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> m = Vector512.Create(mean), r = Vector512.Create(rstd);
            for (; i <= d - 16; i += 16)
                Vector512.Store(Vector512.FusedMultiplyAdd((Vector512.Load(x + i) - m) * r, Vector512.Load(gamma + i), Vector512.Load(beta + i)), y + i);
        }
        for (; i < d; i++) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
        meanOut = mean;
        rstdOut = rstd;
    }

    /// <summary>
    /// <see cref="SoftmaxRow"/> for a row with room for a whole last vector: floats n … ⌈n/16⌉·16 − 1 may be read
    /// and are written as 0. No scalar tail (on 197-token rows the scalar max, the 5 scalar exps and the lane-by-lane
    /// max reduction cost as much as the 12 vectors). Needs AVX-512 (<see cref="VectorExp.IsSupported"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftmaxRowPadded(float* row, int n, float scale)
    {
        int full = n & ~15, rem = n - full;
        var ninf = Vector512.Create(float.NegativeInfinity);
        // Lanes at or past n: −∞ for the max, 0 after the exp.
        var tailMask = Vector512.GreaterThan(Vector512.Create(rem), Vector512<int>.Indices).AsSingle();
        var m0 = ninf; var m1 = ninf;
        int i = 0;
        for (; i + 32 <= full; i += 32) { m0 = Vector512.MaxNative(m0, Vector512.Load(row + i)); m1 = Vector512.MaxNative(m1, Vector512.Load(row + i + 16)); }
        if (i < full) m0 = Vector512.MaxNative(m0, Vector512.Load(row + i));
        if (rem > 0) m1 = Vector512.MaxNative(m1, Vector512.ConditionalSelect(tailMask, Vector512.Load(row + full), ninf));
        float max = HorizontalMax(Vector512.MaxNative(m0, m1));

        Vector512<float> mv = Vector512.Create(max), sv = Vector512.Create(scale), acc0 = default, acc1 = default;
        for (i = 0; i + 32 <= full; i += 32)
        {
            var e0 = VectorExp.Exp((Vector512.Load(row + i) - mv) * sv);
            var e1 = VectorExp.Exp((Vector512.Load(row + i + 16) - mv) * sv);
            acc0 += e0; acc1 += e1;
            Vector512.Store(e0, row + i); Vector512.Store(e1, row + i + 16);
        }
        if (i < full) { var e = VectorExp.Exp((Vector512.Load(row + i) - mv) * sv); acc0 += e; Vector512.Store(e, row + i); }
        if (rem > 0)
        {
            var e = Vector512.ConditionalSelect(tailMask, VectorExp.Exp((Vector512.Load(row + full) - mv) * sv), default);
            acc1 += e; Vector512.Store(e, row + full);
        }
        var inv = Vector512.Create(1f / Vector512.Sum(acc0 + acc1));
        int end = full + (rem > 0 ? 16 : 0);
        for (i = 0; i < end; i += 16) Vector512.Store(Vector512.Load(row + i) * inv, row + i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMax(Vector512<float> v)
    {
        var h = Vector256.MaxNative(v.GetLower(), v.GetUpper());
        var q = Vector128.MaxNative(h.GetLower(), h.GetUpper());
        q = Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1)));
        q = Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2)));
        return q.ToScalar();
    }

    /// <summary>row = softmax(row·scale) in place (scale &gt; 0, so the max of row gives the max of row·scale).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftmaxRow(float* row, int n, float scale)
    {
        int i = 0;
        float max = float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var mv = Vector512.Create(float.NegativeInfinity);
            for (; i <= n - 16; i += 16) mv = Vector512.Max(mv, Vector512.Load(row + i));
            max = Vector512.Max(mv, Vector512.Create(max)).ToScalar();
            for (int l = 1; l < 16; l++) max = MathF.Max(max, mv.GetElement(l));
        }
        for (; i < n; i++) max = MathF.Max(max, row[i]);

        i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> mv = Vector512.Create(max), sv = Vector512.Create(scale), acc = default;
            bool fast = VectorExp.IsSupported;
            for (; i <= n - 16; i += 16)
            {
                var z = (Vector512.Load(row + i) - mv) * sv;
                var e = fast ? VectorExp.Exp(z) : Vector512.Exp(z);
                acc += e;
                Vector512.Store(e, row + i);
            }
            sum = Vector512.Sum(acc);
        }
        for (; i < n; i++) sum += row[i] = MathF.Exp((row[i] - max) * scale);

        float inv = 1f / sum;
        i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16) Vector512.Store(Vector512.Load(row + i) * inv, row + i);
        for (; i < n; i++) row[i] *= inv;
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
