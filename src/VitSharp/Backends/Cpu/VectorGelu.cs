using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// GELU over spans with AVX-512, matching the double-precision references in <see cref="Activations"/> to float rounding.
///
/// erf: z = |x|/√2 is clamped to [0, 4] (erf(4) = 1 − 1.5e-8 rounds to 1 in float), cut into 16 intervals of 0.25 and
/// each interval gets a degree-7 polynomial in s ∈ [−1, 1]. The coefficients are Chebyshev interpolants of the double
/// reference erf, computed once at start-up (no magic constants to get wrong); one vpermps per coefficient picks each
/// lane's interval. Interpolation error is below 1e-10, so only float evaluation error (≈ 1 ulp) remains.
/// tanh form: 0.5·x·(1 + tanh(y)) = x·sigmoid(2y) = x / (1 + exp(−2y)).
/// </summary>
internal static class VectorGelu
{
    private const int Intervals = 16, Degree = 7;
    private const float Width = 0.25f, ZMax = Intervals * Width;
    private static readonly float[] Table = BuildErfTable();   // [coefficient j][interval]
    private static readonly Vector512<float>[] Coefficients = Enumerable.Range(0, Degree + 1)
        .Select(j => Vector512.Create(Table.AsSpan(j * Intervals, Intervals))).ToArray();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Erf(ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            var c = Coefficients;
            for (; i <= x.Length - 16; i += 16) GeluErf16(Vector512.Create(x.Slice(i, 16)), c).CopyTo(y.Slice(i, 16));
        }
        for (; i < x.Length; i++) y[i] = Activations.GeluErf(x[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector512<float> GeluErf16(Vector512<float> x, Vector512<float>[] c)
    {
        var z = Vector512.Min(Vector512.Abs(x) * 0.70710678118654752f, Vector512.Create(ZMax));
        var idx = Vector512.Min(Vector512.ConvertToInt32(z * (1f / Width)), Vector512.Create(Intervals - 1));
        var s = (z - (Vector512.ConvertToSingle(idx) + Vector512.Create(0.5f)) * Width) * (2f / Width);
        var p = Avx512F.PermuteVar16x32(c[Degree], idx);
        for (int j = Degree - 1; j >= 0; j--) p = Vector512.FusedMultiplyAdd(p, s, Avx512F.PermuteVar16x32(c[j], idx));
        p = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(z, Vector512.Create(ZMax)), Vector512<float>.One, p);
        var erf = p ^ (x & Vector512.Create(-0f));   // erf is odd: give it x's sign
        return 0.5f * x * (Vector512<float>.One + erf);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            const float k = 0.7978845608028654f;   // sqrt(2/pi)
            for (; i <= x.Length - 16; i += 16)
            {
                var v = Vector512.Create(x.Slice(i, 16));
                var u = k * Vector512.FusedMultiplyAdd(0.044715f * v * v, v, v);
                (v / (Vector512<float>.One + Vector512.Exp(-2f * u))).CopyTo(y.Slice(i, 16));
            }
        }
        for (; i < x.Length; i++) y[i] = Activations.GeluTanh(x[i]);
    }

    private static float[] BuildErfTable()
    {
        var table = new float[(Degree + 1) * Intervals];
        const int n = Degree + 1;
        for (int t = 0; t < Intervals; t++)
        {
            double mid = (t + 0.5) * Width, half = Width / 2;
            // Chebyshev coefficients of erf(mid + half·s) on s ∈ [−1, 1] ...
            var cheb = new double[n];
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int k = 0; k < n; k++)
                {
                    double th = Math.PI * (k + 0.5) / n;
                    sum += Activations.Erf(mid + half * Math.Cos(th)) * Math.Cos(j * th);
                }
                cheb[j] = 2.0 * sum / n;
            }
            cheb[0] /= 2;
            // ... turned into monomial coefficients with T(j+1) = 2s·T(j) − T(j−1).
            var mono = new double[n];
            var tPrev = new double[n]; var tCur = new double[n];
            tPrev[0] = 1; tCur[1] = 1;
            for (int j = 0; j < n; j++)
            {
                var tj = j == 0 ? tPrev : tCur;
                for (int d = 0; d < n; d++) mono[d] += cheb[j] * tj[d];
                if (j >= 1)
                {
                    var next = new double[n];
                    for (int d = 0; d + 1 < n; d++) next[d + 1] = 2 * tCur[d];
                    for (int d = 0; d < n; d++) next[d] -= tPrev[d];
                    tPrev = tCur; tCur = next;
                }
            }
            for (int d = 0; d < n; d++) table[d * Intervals + t] = (float)mono[d];
        }
        return table;
    }
}
