using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// Packing for the GEMM: copies a kc-deep slice of op(A) or op(B) into "slivers" laid out exactly as the micro-kernel
/// reads them (A: kc × MR, row index fastest; B: kc × NR, column index fastest), zero-padded past the matrix edge so
/// the kernel never needs an edge case. The transposing cases (A not transposed, B transposed: both K-contiguous, as
/// in Linear) go through 16×16 register transposes; a scalar strided copy would cost as much as the product at batch 1.
/// </summary>
internal static unsafe class GemmPack
{
    /// <summary>dst[k·NR + j] = op(B)[pc + k, j0 + j] for j &lt; N − j0, else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void B(bool transB, float* b, int ldb, int pc, int kc, int j0, int n, int nr, float* dst, bool simd)
    {
        int valid = Math.Min(nr, n - j0);
        if (!transB)
        {
            for (int k = 0; k < kc; k++)
            {
                float* s = b + (long)(pc + k) * ldb + j0;
                float* d = dst + (long)k * nr;
                Buffer.MemoryCopy(s, d, valid * 4L, valid * 4L);
                for (int j = valid; j < nr; j++) d[j] = 0;
            }
            return;
        }
        // B stored N×K: column j of op(B) is row j0+j of B.
        for (int g = 0; g < nr; g += 16)
        {
            int cols = Math.Min(16, valid - g);
            int k0 = 0;
            if (simd && cols == 16 && g + 16 <= nr)
                for (; k0 + 16 <= kc; k0 += 16)
                    Transpose16x16(b + (long)(j0 + g) * ldb + pc + k0, ldb, dst + (long)k0 * nr + g, nr);
            for (int j = g; j < Math.Min(g + 16, nr); j++)
            {
                if (j < valid)
                {
                    float* s = b + (long)(j0 + j) * ldb + pc;
                    for (int k = k0; k < kc; k++) dst[(long)k * nr + j] = s[k];
                }
                else for (int k = k0; k < kc; k++) dst[(long)k * nr + j] = 0;
            }
        }
    }

    /// <summary>dst[k·MR + i] = op(A)[i0 + i, pc + k] for i &lt; M − i0, else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void A(bool transA, float* a, int lda, int pc, int kc, int i0, int m, int mr, float* dst)
    {
        int valid = Math.Min(mr, m - i0);
        if (transA)
        {
            // A stored K×M: each k gives MR contiguous values.
            for (int k = 0; k < kc; k++)
            {
                float* s = a + (long)(pc + k) * lda + i0;
                float* d = dst + (long)k * mr;
                for (int i = 0; i < valid; i++) d[i] = s[i];
                for (int i = valid; i < mr; i++) d[i] = 0;
            }
            return;
        }
        for (int i = 0; i < mr; i++)
        {
            if (i < valid)
            {
                float* s = a + (long)(i0 + i) * lda + pc;
                for (int k = 0; k < kc; k++) dst[(long)k * mr + i] = s[k];
            }
            else for (int k = 0; k < kc; k++) dst[(long)k * mr + i] = 0;
        }
    }

    /// <summary>Two adjacent 8-row A slivers (rows i0..i0+15, all inside M) from row-major A, via 16×16 transposes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void A16(float* a, int lda, int pc, int kc, int i0, float* dst0, float* dst1)
    {
        float* t = stackalloc float[256];
        int k0 = 0;
        for (; k0 + 16 <= kc; k0 += 16)
        {
            Transpose16x16(a + (long)i0 * lda + pc + k0, lda, t, 16);
            for (int k = 0; k < 16; k++)
            {
                Vector256.Store(Vector256.Load(t + k * 16), dst0 + (long)(k0 + k) * 8);
                Vector256.Store(Vector256.Load(t + k * 16 + 8), dst1 + (long)(k0 + k) * 8);
            }
        }
        for (int i = 0; i < 16; i++)
        {
            float* s = a + (long)(i0 + i) * lda + pc;
            float* d = i < 8 ? dst0 + i : dst1 + i - 8;
            for (int k = k0; k < kc; k++) d[(long)k * 8] = s[k];
        }
    }

    /// <summary>dst[c·ldd + r] = src[r·lds + c] for r, c &lt; 16, with AVX-512 shuffles (64 of them for 256 floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose16x16(float* src, int lds, float* dst, int ldd)
    {
        var r = stackalloc Vector512<float>[16];
        var t = stackalloc Vector512<float>[16];
        for (int i = 0; i < 16; i++) r[i] = Vector512.Load(src + (long)i * lds);
        // Pairs of rows interleaved: t[2p] lane L = r[2p][4L], r[2p+1][4L], r[2p][4L+1], r[2p+1][4L+1].
        for (int p = 0; p < 8; p++)
        {
            t[2 * p] = Avx512F.UnpackLow(r[2 * p], r[2 * p + 1]);
            t[2 * p + 1] = Avx512F.UnpackHigh(r[2 * p], r[2 * p + 1]);
        }
        // Quads: r[4q + m] lane L = rows 4q..4q+3 of column 4L + m.
        for (int q = 0; q < 4; q++)
        {
            Vector512<double> t0 = t[4 * q].AsDouble(), t1 = t[4 * q + 1].AsDouble(), t2 = t[4 * q + 2].AsDouble(), t3 = t[4 * q + 3].AsDouble();
            r[4 * q] = Avx512F.UnpackLow(t0, t2).AsSingle();
            r[4 * q + 1] = Avx512F.UnpackHigh(t0, t2).AsSingle();
            r[4 * q + 2] = Avx512F.UnpackLow(t1, t3).AsSingle();
            r[4 * q + 3] = Avx512F.UnpackHigh(t1, t3).AsSingle();
        }
        // Gather the four row-quads of each column: lanes 0,2 then 1,3 (0x88, 0xDD), twice.
        for (int m = 0; m < 4; m++)
        {
            var v0 = Avx512F.Shuffle4x128(r[m], r[4 + m], 0x88);
            var v1 = Avx512F.Shuffle4x128(r[m], r[4 + m], 0xDD);
            var v2 = Avx512F.Shuffle4x128(r[8 + m], r[12 + m], 0x88);
            var v3 = Avx512F.Shuffle4x128(r[8 + m], r[12 + m], 0xDD);
            Vector512.Store(Avx512F.Shuffle4x128(v0, v2, 0x88), dst + (long)m * ldd);
            Vector512.Store(Avx512F.Shuffle4x128(v1, v3, 0x88), dst + (long)(4 + m) * ldd);
            Vector512.Store(Avx512F.Shuffle4x128(v0, v2, 0xDD), dst + (long)(8 + m) * ldd);
            Vector512.Store(Avx512F.Shuffle4x128(v1, v3, 0xDD), dst + (long)(12 + m) * ldd);
        }
    }
}
