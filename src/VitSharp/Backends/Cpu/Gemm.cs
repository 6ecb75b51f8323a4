using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSharp.Backends.Cpu;

/// <summary>Which micro-kernel family the GEMM uses; settable so tests cover the fallbacks on an AVX-512 machine.</summary>
internal enum GemmIsa { Avx512, Vector256, Scalar }

/// <summary>
/// Single-precision matrix product on the host, row-major:
/// C[M,N] = op(A)·op(B) (+ C when accumulate), where op(A) is A (M×K, stride lda) or Aᵀ (A stored K×M) and
/// op(B) is B (K×N, stride ldb) or Bᵀ (B stored N×K, the PyTorch Linear weight layout).
///
/// Goto/BLIS structure: for each kc-deep slice of K, op(B) and op(A) are packed (in parallel) into slivers of NR
/// columns and MR rows; then the C tiles are shared out among the threads in blocks of mc × nc, and each tile is one
/// micro-kernel call that keeps MR×NR sums in registers over the kc slice. A tile's B sliver (kc·NR floats) is
/// reused by all the A slivers of the block from L1/L2; the packed slices stay in L2/L3.
/// An optional epilogue (bias over columns, then an activation) is applied to each tile right after its last slice,
/// while it is still in L1.
/// </summary>
internal static unsafe class Gemm
{
    internal static GemmIsa Isa = Avx512F.IsSupported && Vector512.IsHardwareAccelerated ? GemmIsa.Avx512
        : Vector256.IsHardwareAccelerated ? GemmIsa.Vector256 : GemmIsa.Scalar;

    // Blocking (floats): a 192-deep B sliver is 36 KiB (L1 48 KiB); an 8-row A sliver 6 KiB. Tuned with `bench gemm`.
    internal static int KC = 192;
    internal static int McSlivers = 16;   // A slivers per work item
    internal static int NcSlivers = 8;    // B slivers per work item

    // Below this many multiply-adds the GEMM runs on the calling thread: waking a worker costs more.
    private const long SerialMacs = 64 * 64 * 64;

    public static void Run(bool transA, bool transB, int M, int N, int K,
        float* A, int lda, float* B, int ldb, float* C, int ldc, bool accumulate)
        => Run(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, null, Activation.None);

    /// <summary>As above, then C = act(C + bias) with bias over columns (bias may be null).</summary>
    public static void Run(bool transA, bool transB, int M, int N, int K,
        float* A, int lda, float* B, int ldb, float* C, int ldc, bool accumulate, float* bias, Activation act)
    {
        if (M <= 0 || N <= 0) return;
        if (K <= 0)
        {
            for (int i = 0; i < M; i++)
            {
                if (!accumulate) new Span<float>(C + (long)i * ldc, N).Clear();
                Epilogue(C + (long)i * ldc, N, bias, act);
            }
            return;
        }
        var isa = Isa;
        int mr = isa switch { GemmIsa.Avx512 => 8, GemmIsa.Vector256 => 6, _ => 4 };
        int nr = isa switch { GemmIsa.Avx512 => 48, GemmIsa.Vector256 => 16, _ => 4 };
        delegate*<float*, float*, int, float*, int, bool, void> kernel = isa switch
        {
            GemmIsa.Avx512 => &GemmKernels.Kernel8x48,
            GemmIsa.Vector256 => &GemmKernels.Kernel6x16,
            _ => &GemmKernels.Kernel4x4,
        };
        bool simdPack = isa == GemmIsa.Avx512;
        int mSlivers = (M + mr - 1) / mr, nSlivers = (N + nr - 1) / nr;
        int kcMax = Math.Min(KC, K);
        bool parallel = (long)M * N * K >= SerialMacs && CpuThreads.Count > 1;

        // Work items: blocks of whole slivers, made smaller when there would be too few to keep every thread busy.
        int mcs = Math.Min(McSlivers, mSlivers), ncs = Math.Min(NcSlivers, nSlivers);
        int threads = parallel ? CpuThreads.Count : 1;
        while (Blocks(mSlivers, mcs) * Blocks(nSlivers, ncs) < 3 * threads && (mcs > 1 || ncs > 1))
        {
            if (ncs > 1 && (ncs >= mcs || mcs == 1)) ncs = (ncs + 1) / 2; else mcs = (mcs + 1) / 2;
        }
        int mBlocks = Blocks(mSlivers, mcs), nBlocks = Blocks(nSlivers, ncs);

        var buffers = PackBuffers.ForThread((long)mSlivers * mr * kcMax, (long)nSlivers * nr * kcMax);
        float* ap = buffers.A, bp = buffers.B;
        int aTasks = simdPack && !transA ? (mSlivers + 1) / 2 : mSlivers;

        for (int pc = 0; pc < K; pc += kcMax)
        {
            int kc = Math.Min(kcMax, K - pc);
            bool add = accumulate || pc > 0, last = pc + kc == K;
            Action<int> pack = t =>
            {
                if (t < nSlivers)
                {
                    GemmPack.B(transB, B, ldb, pc, kc, t * nr, N, nr, bp + (long)t * kc * nr, simdPack);
                    return;
                }
                t -= nSlivers;
                if (aTasks == mSlivers) { GemmPack.A(transA, A, lda, pc, kc, t * mr, M, mr, ap + (long)t * kc * mr); return; }
                int s = 2 * t;   // a pair of 8-row slivers through 16×16 transposes
                if (s + 1 < mSlivers && (s + 2) * mr <= M)
                    GemmPack.A16(A, lda, pc, kc, s * mr, ap + (long)s * kc * mr, ap + (long)(s + 1) * kc * mr);
                else
                    for (; s < Math.Min(2 * t + 2, mSlivers); s++)
                        GemmPack.A(false, A, lda, pc, kc, s * mr, M, mr, ap + (long)s * kc * mr);
            };
            Action<int> tiles = item =>
            {
                int mb = item % mBlocks, nb = item / mBlocks;
                float* tmp = stackalloc float[8 * 48];
                int ms1 = Math.Min(mSlivers, (mb + 1) * mcs), ns1 = Math.Min(nSlivers, (nb + 1) * ncs);
                for (int ns = nb * ncs; ns < ns1; ns++)
                {
                    int j0 = ns * nr, nv = Math.Min(nr, N - j0);
                    float* bs = bp + (long)ns * kc * nr;
                    for (int ms = mb * mcs; ms < ms1; ms++)
                    {
                        int i0 = ms * mr, mv = Math.Min(mr, M - i0);
                        float* c = C + (long)i0 * ldc + j0;
                        float* asl = ap + (long)ms * kc * mr;
                        if (mv == mr && nv == nr) kernel(asl, bs, kc, c, ldc, add);
                        else
                        {
                            // Edge tile: compute the whole MR×NR into scratch, keep the part inside C.
                            kernel(asl, bs, kc, tmp, nr, false);
                            for (int i = 0; i < mv; i++)
                                for (int j = 0; j < nv; j++)
                                    c[(long)i * ldc + j] = add ? c[(long)i * ldc + j] + tmp[i * nr + j] : tmp[i * nr + j];
                        }
                        if (last && (bias != null || act != Activation.None))
                            for (int i = 0; i < mv; i++) Epilogue(c + (long)i * ldc, nv, bias == null ? null : bias + j0, act);
                    }
                }
            };
            if (parallel)
            {
                CpuThreads.For(nSlivers + aTasks, pack);
                CpuThreads.For(mBlocks * nBlocks, tiles);
            }
            else
            {
                for (int t = 0; t < nSlivers + aTasks; t++) pack(t);
                for (int t = 0; t < mBlocks * nBlocks; t++) tiles(t);
            }
        }
    }

    private static int Blocks(int slivers, int per) => (slivers + per - 1) / per;

    private static void Epilogue(float* row, int n, float* bias, Activation act)
    {
        var r = new Span<float>(row, n);
        if (bias != null) System.Numerics.Tensors.TensorPrimitives.Add(r, new ReadOnlySpan<float>(bias, n), r);
        if (act != Activation.None) Activations.Apply(act, r, r);
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

    /// <summary>Packing space of one calling thread (workers write into the caller's buffers), grown on demand,
    /// freed with the thread.</summary>
    private sealed class PackBuffers
    {
        [ThreadStatic] private static PackBuffers? _mine;
        public float* A, B;
        private long _aCap, _bCap;

        public static PackBuffers ForThread(long aFloats, long bFloats)
        {
            var p = _mine ??= new PackBuffers();
            if (p._aCap < aFloats) { NativeMemory.AlignedFree(p.A); p.A = Alloc(aFloats); p._aCap = aFloats; }
            if (p._bCap < bFloats) { NativeMemory.AlignedFree(p.B); p.B = Alloc(bFloats); p._bCap = bFloats; }
            return p;
        }

        private static float* Alloc(long floats) => (float*)NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);

        ~PackBuffers() { NativeMemory.AlignedFree(A); NativeMemory.AlignedFree(B); }
    }
}
