using System.Numerics;
using System.Runtime.Intrinsics;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// Single-precision matrix product on the host, row-major:
/// C[M,N] = op(A)·op(B) (+ C when accumulate), where op(A) is A (M×K, stride lda) or Aᵀ (A stored K×M) and
/// op(B) is B (K×N, stride ldb) or Bᵀ (B stored N×K, the PyTorch Linear weight layout).
/// </summary>
internal static unsafe class Gemm
{
    public static void Run(bool transA, bool transB, int M, int N, int K,
        float* A, int lda, float* B, int ldb, float* C, int ldc, bool accumulate)
    {
        if (M == 0 || N == 0) return;
        if (!transA && transB) { RowDot(M, N, K, A, lda, B, ldb, C, ldc, accumulate); return; }
        // General path: C row i = Σk op(A)[i,k] · op(B)[k,:] with op(B) rows made contiguous first.
        float[]? packed = null;
        float* b = B;
        int ldbEff = ldb;
        if (transB)
        {
            packed = new float[(long)K * N];
            fixed (float* p = packed)
            {
                for (int n = 0; n < N; n++)
                    for (int k = 0; k < K; k++) p[(long)k * N + n] = B[(long)n * ldb + k];
            }
            ldbEff = N;
        }
        fixed (float* pk = packed)
        {
            float* bb = packed != null ? pk : b;
            float* a = A; float* c = C; int lda_ = lda, ldc_ = ldc, ldb_ = ldbEff; bool tA = transA, acc = accumulate;
            nint ap = (nint)a, bp = (nint)bb, cp = (nint)c;
            Parallel.For(0, M, i =>
            {
                float* crow = (float*)cp + (long)i * ldc_;
                if (!acc) new Span<float>(crow, N).Clear();
                for (int k = 0; k < K; k++)
                {
                    float aik = tA ? ((float*)ap)[(long)k * lda_ + i] : ((float*)ap)[(long)i * lda_ + k];
                    if (aik == 0f) continue;
                    Axpy(aik, (float*)bp + (long)k * ldb_, crow, N);
                }
            });
        }
    }

    private static void Axpy(float a, float* x, float* y, int n)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; j <= n - 16; j += 16)
                Vector512.Store(Vector512.FusedMultiplyAdd(va, Vector512.Load(x + j), Vector512.Load(y + j)), y + j);
        }
        for (; j < n; j++) y[j] = MathF.FusedMultiplyAdd(a, x[j], y[j]);
    }

    // A (M×K) · Bᵀ where B is N×K: every output is a dot product of two contiguous rows.
    private static void RowDot(int M, int N, int K, float* A, int lda, float* B, int ldb, float* C, int ldc, bool accumulate)
    {
        nint ap = (nint)A, bp = (nint)B, cp = (nint)C;
        int tiles = (M + 3) / 4;
        Parallel.For(0, tiles, t =>
        {
            int i0 = t * 4, i1 = Math.Min(i0 + 4, M);
            for (int i = i0; i < i1; i++)
            {
                float* arow = (float*)ap + (long)i * lda;
                float* crow = (float*)cp + (long)i * ldc;
                for (int j = 0; j < N; j++)
                {
                    float d = Dot(arow, (float*)bp + (long)j * ldb, K);
                    crow[j] = accumulate ? crow[j] + d : d;
                }
            }
        });
    }

    internal static float Dot(float* x, float* y, int n)
    {
        int j = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            for (; j <= n - 32; j += 32)
            {
                acc0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + j), Vector512.Load(y + j), acc0);
                acc1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + j + 16), Vector512.Load(y + j + 16), acc1);
            }
            for (; j <= n - 16; j += 16)
                acc0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + j), Vector512.Load(y + j), acc0);
            s = Vector512.Sum(acc0 + acc1);
        }
        for (; j < n; j++) s = MathF.FusedMultiplyAdd(x[j], y[j], s);
        return s;
    }
}
