using System.Runtime.CompilerServices;
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
/// Goto/BLIS structure: op(B) is packed (in parallel) into kc-deep slivers of NR columns; then the C blocks
/// (mc × nc) are shared out among the threads, and each block walks K slice by slice: pack its A slivers (MR rows),
/// then one micro-kernel call per MR×NR tile, which keeps the sums in registers over the slice. A B sliver
/// (kc·NR floats) is reused from L1 by all A slivers of the block; the A block and the C block stay in L2.
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
    // Prepacked B with at most this many rows of A: B comes from memory (read by one or two M blocks only), so the
    // kernel prefetches it. Larger M reuses each B panel from cache across many M blocks; prefetching there cost ~5 %.
    internal static int PrefetchMaxRows = 1024;

    // Below this many multiply-adds the GEMM runs on the calling thread: waking a worker costs more.
    private const long SerialMacs = 64 * 64 * 64;

    public static void Run(bool transA, bool transB, int M, int N, int K,
        float* A, int lda, float* B, int ldb, float* C, int ldc, bool accumulate)
        => Run(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, null, Activation.None);

    /// <summary>As above, then C = act(C + bias) with bias over columns (bias may be null).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
        RunPlan(new Plan(Isa, KC, M, N, K, transA, transB, A, lda, B, ldb, C, ldc, accumulate, bias, act), null);
    }

    /// <summary>C[M,N] = A·op(B) (+ C) then the epilogue, with op(B) already packed by <see cref="PackedB.Create"/>.
    /// Uses the ISA and KC it was packed with.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int M, float* A, int lda, PackedB packed, float* C, int ldc, bool accumulate, float* bias, Activation act)
    {
        if (M <= 0 || packed.N <= 0) return;
        RunPlan(new Plan(packed.Isa, packed.Kc, M, packed.N, packed.K, false, packed.TransB, A, lda, null, 0, C, ldc, accumulate, bias, act,
            prefetchB: M <= PrefetchMaxRows), packed);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunPlan(Plan g, PackedB? packed)
    {
        int M = g.M, N = g.N, K = g.K;
        bool parallel = (long)M * N * K >= SerialMacs && CpuThreads.Count > 1;

        // Work items: blocks of whole slivers, made smaller when there would be too few to keep every thread busy.
        int mcs = Math.Min(McSlivers, g.MSlivers), ncs = Math.Min(NcSlivers, g.NSlivers);
        int threads = parallel ? CpuThreads.Count : 1;
        while (Blocks(g.MSlivers, mcs) * Blocks(g.NSlivers, ncs) < 3 * threads && (mcs > 1 || ncs > 1))
        {
            if (ncs > 1 && (ncs >= mcs || mcs == 1)) ncs = (ncs + 1) / 2; else mcs = (mcs + 1) / 2;
        }
        g.Mcs = mcs; g.Ncs = ncs;
        g.MBlocks = Blocks(g.MSlivers, mcs);
        int items = g.MBlocks * Blocks(g.NSlivers, ncs);

        // All of op(B) is packed once (slice after slice), then every item runs the whole K loop on its C block,
        // packing its own A block per slice: one barrier per product, and C blocks stay in L2 across slices.
        int packTasks = g.Slices * g.NSlivers;
        if (packed is not null)
        {
            g.BPack = packed.Data;
            packTasks = 0;
        }
        else g.BPack = PackBuffers.ForThread(0, (long)g.NSlivers * g.Nr * K).B;
        if (parallel)
        {
            if (packTasks > 0) CpuThreads.For(packTasks, g.PackB);
            CpuThreads.For(items, g.Tiles);
        }
        else
        {
            for (int t = 0; t < packTasks; t++) g.PackB(t);
            for (int t = 0; t < items; t++) g.Tiles(t);
        }
    }

    /// <summary>One product's shapes, pointers and blocking, shared by the threads working on it.</summary>
    internal sealed class Plan
    {
        public readonly int Mr, Nr, MSlivers, NSlivers, Slices, KcMax;
        public int M => _m;
        public int N => _n;
        public int K => _k;
        public int Mcs, Ncs, MBlocks;
        public float* BPack;
        private readonly int _m, _n, _k, _lda, _ldb, _ldc;
        private readonly bool _transA, _transB, _accumulate, _simdPack;
        private readonly float* _a, _b, _c, _bias;
        private readonly Activation _act;
        private readonly delegate*<float*, float*, int, float*, int, bool, void> _kernel;

        public Plan(GemmIsa isa, int kc, int m, int n, int k, bool transA, bool transB, float* a, int lda, float* b, int ldb,
            float* c, int ldc, bool accumulate, float* bias, Activation act, bool prefetchB = false)
        {
            Mr = isa switch { GemmIsa.Avx512 => 8, GemmIsa.Vector256 => 6, _ => 4 };
            Nr = isa switch { GemmIsa.Avx512 => 48, GemmIsa.Vector256 => 16, _ => 4 };
            _kernel = isa switch
            {
                GemmIsa.Avx512 => prefetchB ? &GemmKernels.Kernel8x48Prefetch : &GemmKernels.Kernel8x48,
                GemmIsa.Vector256 => &GemmKernels.Kernel6x16,
                _ => &GemmKernels.Kernel4x4,
            };
            _simdPack = isa == GemmIsa.Avx512;
            _m = m; _n = n; _k = k; _transA = transA; _transB = transB; _accumulate = accumulate; _act = act;
            _a = a; _lda = lda; _b = b; _ldb = ldb; _c = c; _ldc = ldc; _bias = bias;
            MSlivers = (m + Mr - 1) / Mr;
            NSlivers = (n + Nr - 1) / Nr;
            KcMax = Math.Min(kc, k);
            Slices = (k + KcMax - 1) / KcMax;
        }

        // Packed B: slice after slice (each NSlivers·Nr wide), sliver after sliver inside a slice.
        /// <summary>Floats of packed op(B): every slice, every sliver.</summary>
        public long PackedFloats => (long)NSlivers * Nr * _k;

        private float* BSliver(int slice, int sliver, int kc) => BPack + (long)slice * KcMax * NSlivers * Nr + (long)sliver * kc * Nr;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void PackB(int task)
        {
            int slice = task / NSlivers, s = task % NSlivers;
            int pc = slice * KcMax, kc = Math.Min(KcMax, _k - pc);
            GemmPack.B(_transB, _b, _ldb, pc, kc, s * Nr, _n, Nr, BSliver(slice, s, kc), _simdPack);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Tiles(int item)
        {
            int mb = item % MBlocks, nb = item / MBlocks;
            int ms0 = mb * Mcs, ms1 = Math.Min(MSlivers, ms0 + Mcs), ns0 = nb * Ncs, ns1 = Math.Min(NSlivers, ns0 + Ncs);
            float* ap = PackBuffers.ForThread((long)Mcs * Mr * KcMax, 0).A;
            float* tmp = stackalloc float[8 * 48];
            for (int slice = 0; slice < Slices; slice++)
            {
                int pc = slice * KcMax, kc = Math.Min(KcMax, _k - pc);
                bool add = _accumulate || pc > 0, last = pc + kc == _k;
                PackA(ms0, ms1, pc, kc, ap);
                for (int ns = ns0; ns < ns1; ns++)
                {
                    int j0 = ns * Nr, nv = Math.Min(Nr, _n - j0);
                    float* bs = BSliver(slice, ns, kc);
                    for (int ms = ms0; ms < ms1; ms++)
                    {
                        int i0 = ms * Mr, mv = Math.Min(Mr, _m - i0);
                        float* c = _c + (long)i0 * _ldc + j0;
                        float* asl = ap + (long)(ms - ms0) * kc * Mr;
                        if (mv == Mr && nv == Nr) _kernel(asl, bs, kc, c, _ldc, add);
                        else
                        {
                            // Edge tile: compute the whole MR×NR into scratch, keep the part inside C.
                            _kernel(asl, bs, kc, tmp, Nr, false);
                            for (int i = 0; i < mv; i++)
                                for (int j = 0; j < nv; j++)
                                    c[(long)i * _ldc + j] = add ? c[(long)i * _ldc + j] + tmp[i * Nr + j] : tmp[i * Nr + j];
                        }
                        if (last && (_bias != null || _act != Activation.None))
                            for (int i = 0; i < mv; i++) Epilogue(c + (long)i * _ldc, nv, _bias == null ? null : _bias + j0, _act);
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void PackA(int ms0, int ms1, int pc, int kc, float* ap)
        {
            for (int ms = ms0; ms < ms1; ms++)
            {
                float* dst = ap + (long)(ms - ms0) * kc * Mr;
                // Pairs of full 8-row slivers go through 16×16 transposes.
                if (_simdPack && !_transA && ms + 1 < ms1 && (ms + 2) * Mr <= _m)
                {
                    GemmPack.A16(_a, _lda, pc, kc, ms * Mr, dst, dst + (long)kc * Mr);
                    ms++;
                }
                else GemmPack.A(_transA, _a, _lda, pc, kc, ms * Mr, _m, Mr, dst);
            }
        }
    }

    private static int Blocks(int slivers, int per) => (slivers + per - 1) / per;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Epilogue(float* row, int n, float* bias, Activation act)
    {
        if (bias != null) VectorOps.Add(row, bias, row, n);
        if (act != Activation.None) Activations.Apply(act, new Span<float>(row, n), new Span<float>(row, n));
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
