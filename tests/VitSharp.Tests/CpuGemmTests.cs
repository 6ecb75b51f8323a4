using VitSharp.Backends;
using VitSharp.Backends.Cpu;

namespace VitSharp.Tests;

/// <summary>The packed SIMD GEMM against a naive double-precision product, for every transpose case, edge size,
/// stride, accumulate and epilogue, on each micro-kernel family (AVX-512, 256-bit, scalar) and 1 or 2 threads.</summary>
public unsafe class CpuGemmTests
{
    // |got − ref| ≤ Tol·Σk |a·b| (+ a floor for exact zeros): fp32 sums of K terms stay far inside this.
    private const double Tol = 1e-5;

    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 }, { 3, 17, 5 }, { 17, 3, 197 }, { 8, 48, 16 }, { 16, 96, 32 }, { 9, 49, 17 },
        { 197, 64, 80 }, { 33, 1000, 47 }, { 130, 145, 400 }, { 1031, 21, 19 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesDoubleReferenceForAllTransposes(int m, int n, int k)
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                Check(ta, tb, m, n, k, padA: 0, padB: 0, padC: 0, accumulate: false);
    }

    [Fact]
    public void StridesLargerThanRowsAndAccumulate()
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                Check(ta, tb, 37, 53, 70, padA: 3, padB: 5, padC: 7, accumulate: false);
                Check(ta, tb, 37, 53, 70, padA: 16, padB: 1, padC: 2, accumulate: true);
                Check(ta, tb, 200, 100, 300, padA: 0, padB: 0, padC: 0, accumulate: true);
            }
    }

    [Fact]
    public void EveryKernelFamilyAndThreadCount()
    {
        var isa = Gemm.Isa;
        int threads = CpuThreads.Count;
        try
        {
            foreach (var family in new[] { GemmIsa.Avx512, GemmIsa.Vector256, GemmIsa.Scalar })
            {
                if (family == GemmIsa.Avx512 && isa != GemmIsa.Avx512) continue;
                Gemm.Isa = family;
                foreach (int t in new[] { 1, 2 })
                {
                    CpuThreads.Count = t;
                    foreach (bool ta in new[] { false, true })
                        foreach (bool tb in new[] { false, true })
                        {
                            Check(ta, tb, 77, 101, 203, padA: 1, padB: 2, padC: 3, accumulate: false);
                            Check(ta, tb, 19, 33, 17, padA: 0, padB: 0, padC: 0, accumulate: true);
                        }
                }
            }
        }
        finally { Gemm.Isa = isa; CpuThreads.Count = threads; }
    }

    [Fact]
    public void DeepProductSpansSeveralKSlices()
    {
        Assert.True(Gemm.KC < 1100);
        Check(false, true, 23, 50, 1100, 0, 0, 0, accumulate: false);
        Check(true, false, 23, 50, 1100, 0, 0, 0, accumulate: true);
    }

    [Theory]
    [InlineData(Activation.None)]
    [InlineData(Activation.Gelu)]
    [InlineData(Activation.GeluTanh)]
    public void EpilogueAddsBiasThenActivation(Activation act)
    {
        const int m = 45, n = 70, k = 33;
        var rng = new Random(5);
        float[] a = Rand(rng, m * k), b = Rand(rng, n * k), bias = Rand(rng, n), c = new float[m * n];
        fixed (float* pa = a, pb = b, pc = c, pbias = bias)
            Gemm.Run(false, true, m, n, k, pa, k, pb, k, pc, n, false, pbias, act);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias[j];
                for (int p = 0; p < k; p++) s += (double)a[i * k + p] * b[j * k + p];
                double want = act switch
                {
                    Activation.Gelu => 0.5 * s * (1 + Activations.Erf(s / Math.Sqrt(2))),
                    Activation.GeluTanh => Activations.GeluTanh((float)s),
                    _ => s,
                };
                Assert.True(Math.Abs(c[i * n + j] - want) <= 1e-5 * (1 + Math.Abs(want)), $"({i},{j}): {c[i * n + j]} vs {want}");
            }
    }

    [Fact]
    public void ZeroDepthClearsOrKeeps()
    {
        float[] c = { 1, 2, 3, 4 };
        fixed (float* pc = c)
        {
            Gemm.Run(false, false, 2, 2, 0, null, 0, null, 0, pc, 2, accumulate: true);
            Assert.Equal(new float[] { 1, 2, 3, 4 }, c);
            Gemm.Run(false, false, 2, 2, 0, null, 0, null, 0, pc, 2, accumulate: false);
            Assert.Equal(new float[4], c);
        }
    }

    [CpuFeatureFact("avx512f")]
    public void TransposeOf16x16BlockIsExact()
    {
        var src = new float[16 * 20];
        for (int i = 0; i < src.Length; i++) src[i] = i;
        var dst = new float[16 * 18];
        fixed (float* s = src, d = dst) GemmPack.Transpose16x16(s, 20, d, 18);
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) Assert.Equal(src[r * 20 + c], dst[c * 18 + r]);
    }

    private static void Check(bool ta, bool tb, int m, int n, int k, int padA, int padB, int padC, bool accumulate)
    {
        var rng = new Random(m * 7919 + n * 31 + k + (ta ? 1 : 0) + (tb ? 2 : 0));
        // Stored shapes: A is M×K (or K×M), B is K×N (or N×K); each row padded by pad extra floats.
        int aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
        int lda = aCols + padA, ldb = bCols + padB, ldc = n + padC;
        float[] a = Rand(rng, aRows * lda), b = Rand(rng, bRows * ldb), c = Rand(rng, m * ldc);
        var c0 = (float[])c.Clone();
        fixed (float* pa = a, pb = b, pc = c)
            Gemm.Run(ta, tb, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = accumulate ? c0[i * ldc + j] : 0, mag = Math.Abs(s);
                for (int p = 0; p < k; p++)
                {
                    double x = ta ? a[p * lda + i] : a[i * lda + p];
                    double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                    s += x * y;
                    mag += Math.Abs(x * y);
                }
                double err = Math.Abs(c[i * ldc + j] - s);
                if (err > Tol * mag + 1e-30)
                    Assert.Fail($"tA={ta} tB={tb} {m}x{n}x{k}: C[{i},{j}] = {c[i * ldc + j]}, want {s} (isa {Gemm.Isa})");
            }
            // Padding between rows of C is never written.
            for (int j = n; j < ldc; j++) Assert.Equal(c0[i * ldc + j], c[i * ldc + j]);
        }
    }

    private static float[] Rand(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }
}
