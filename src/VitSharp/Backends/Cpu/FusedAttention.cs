using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// Multi-head attention on AVX-512 for head widths that are multiples of 16. Work items are (batch, head, range of
/// query blocks), so batch 1 still feeds every thread. Per item, K of the head is packed once into 48-wide slivers and V copied
/// into a contiguous block;
/// per block of 48 queries: S = Q·Kᵀ with the GEMM's 8×48 micro-kernel (kc = head width), exact row softmax on the
/// 48 × N scores (they stay in L1/L2, so no online rescaling is needed), then O = P·V with V rows read in place as
/// head-width vectors (<see cref="AttentionKernels"/>). The probabilities are copied out when asked for; the output
/// is the same either way.
/// </summary>
internal static unsafe class FusedAttention
{
    private const int Rows = 48;     // queries per block: 6 slivers of 8 for Q·Kᵀ, 8 groups of 6 for P·V
    private const int Nr = 48;       // key columns per K sliver (the micro-kernel's width)

    /// <summary>Off: every head width takes the GEMM path (for `bench kernels` comparisons).</summary>
    internal static bool Enabled = true;

    public static bool Supports(int headDim) => Enabled && Gemm.Isa == GemmIsa.Avx512 && headDim % 16 == 0 && headDim > 0;

    /// <param name="qkv">(B, N, 3, H, d) floats.</param><param name="y">(B, N, H·d).</param>
    /// <param name="probs">(B, H, N, N) or null.</param>
    /// <param name="batch">B.</param><param name="n">N, tokens.</param><param name="heads">H.</param><param name="hd">d, the head width.</param>
    /// <param name="scale">the factor on q·k before the softmax (1/√d).</param>
    public static void Run(float* qkv, float* y, float* probs, int batch, int n, int heads, int hd, float scale)
    {
        int blocks = (n + Rows - 1) / Rows;
        // Enough items for every thread to get several (dynamic scheduling evens out a busy core).
        int splits = Math.Clamp((4 * CpuThreads.Count + batch * heads - 1) / (batch * heads), 1, blocks);
        if (splits == 1)
        {
            // Many (batch, head) pairs: one item each packs its head's K and V and runs all its query blocks.
            var job = new Job(qkv, y, probs, n, heads, hd, scale, blocks, 1, null);
            CpuThreads.For(batch * heads, job.Item);
            return;
        }
        // Few pairs (batch 1): pack every head's K and V once into the caller's buffer, then share out single query
        // blocks (items packing their own copy would pack each head `splits` times and balance worse).
        int kSlivers = (n + Nr - 1) / Nr;
        long perHead = (long)kSlivers * Nr * hd + (long)n * hd;
        float* shared = SharedBuffer.ForThread(batch * heads * perHead);
        var two = new Job(qkv, y, probs, n, heads, hd, scale, blocks, blocks, shared);
        CpuThreads.For(batch * heads, two.Pack);
        CpuThreads.For(batch * heads * blocks, two.Item);
    }

    // shared: null, each item packs its head's K and V into its thread's buffers; else the packed K and V of every
    // (batch, head), written by Pack before the items run.
    private sealed class Job(float* qkv, float* y, float* probs, int n, int heads, int hd, float scale, int blocks, int splits, float* shared)
    {
        private readonly int _kSlivers = (n + Nr - 1) / Nr;
        private long KFloats => (long)_kSlivers * Nr * hd;

        /// <summary>Packs K of (batch, head) <paramref name="bh"/> into 48-wide slivers and copies its V into a
        /// contiguous N×d block (V rows are 3·H·d floats apart in qkv, a new page each, which the prefetcher does not
        /// follow; P·V reads V 8 times per query block).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void PackHead(int bh, float* kDst, float* vDst)
        {
            int b = bh / heads, h = bh % heads, width = heads * hd, stride = 3 * width;
            float* k = qkv + (long)b * n * stride + h * hd + width, v = k + width;
            for (int j = 0; j < n; j++) Buffer.MemoryCopy(v + (long)j * stride, vDst + (long)j * hd, hd * 4L, hd * 4L);
            for (int s = 0; s < _kSlivers; s++) GemmPack.B(true, k, stride, 0, hd, s * Nr, n, Nr, kDst + (long)s * hd * Nr, true);
        }

        public void Pack(int bh)
        {
            float* kDst = shared + bh * (KFloats + (long)n * hd);
            PackHead(bh, kDst, kDst + KFloats);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Item(int item)
        {
            int bh = item / splits, split = item % splits, b = bh / heads, h = bh % heads;
            int width = heads * hd, stride = 3 * width, kSlivers = _kSlivers, lds = kSlivers * Nr;
            float* q = qkv + (long)b * n * stride + h * hd;
            float* o = y + (long)b * n * width + h * hd;
            var buf = Buffers.ForThread(shared == null ? KFloats : 0, (long)Rows * hd, (long)Rows * lds, shared == null ? (long)n * hd : 0);
            float* tmp = stackalloc float[6 * 128];

            float* kp, vc;
            if (shared == null) { kp = buf.K; vc = buf.V; PackHead(bh, kp, vc); }
            else { kp = shared + bh * (KFloats + (long)n * hd); vc = kp + KFloats; }

            int blk0 = (int)((long)blocks * split / splits), blk1 = (int)((long)blocks * (split + 1) / splits);
            for (int blk = blk0; blk < blk1; blk++)
            {
                int i0 = blk * Rows, rows = Math.Min(Rows, n - i0);
                int qSlivers = (rows + 7) / 8;
                for (int sl = 0; sl < qSlivers; sl++)
                {
                    float* qs = buf.Q + (long)sl * hd * 8;
                    // Pairs of full slivers through 16×16 transposes (a scalar strided copy cost as much as Q·Kᵀ).
                    if ((sl + 2) * 8 <= rows) { GemmPack.A16(q, stride, 0, hd, i0 + sl * 8, qs, qs + hd * 8); sl++; }
                    else GemmPack.A(false, q, stride, 0, hd, i0 + sl * 8, i0 + rows, 8, qs);
                }
                // K sliver outer: it is read from L2 once per block and reused from L1 by the (L1-resident) Q slivers.
                for (int s = 0; s < kSlivers; s++)
                    for (int sl = 0; sl < qSlivers; sl++)
                        GemmKernels.Kernel8x48(buf.Q + (long)sl * hd * 8, kp + (long)s * hd * Nr, hd, buf.S + (long)sl * 8 * lds + s * Nr, lds, false);
                for (int r = 0; r < rows; r++)
                {
                    float* row = buf.S + (long)r * lds;
                    Normalize.SoftmaxRowPadded(row, n, scale);   // rows are lds ≥ ⌈n/16⌉·16 floats
                    if (probs != null)
                        Buffer.MemoryCopy(row, probs + ((long)bh * n + i0 + r) * n, n * 4L, n * 4L);
                }
                for (int r = 0; r < rows; r += 6)
                {
                    float* p = buf.S + (long)r * lds;
                    float* dst = o + (long)(i0 + r) * width;
                    if (r + 6 <= rows) ProductPV(p, lds, vc, hd, dst, width);
                    else
                    {
                        // Last partial group: rows past the block hold stale scores (rows are independent); keep the valid ones.
                        for (int c0 = 0; c0 < hd; c0 += 128)
                        {
                            int cw = Math.Min(128, hd - c0);
                            ProductPV(p, lds, vc + c0, hd, tmp, 128, cw);
                            for (int i = 0; i < rows - r; i++)
                                Buffer.MemoryCopy(tmp + i * 128, dst + (long)i * width + c0, cw * 4L, cw * 4L);
                        }
                    }
                }
            }

            void ProductPV(float* p, int ldp, float* vv, int ldv, float* dst, int ldo, int cols = -1)
            {
                if (cols < 0) cols = hd;
                int c = 0;
                for (; c + 64 <= cols; c += 64) AttentionKernels.Pv6x64(p, ldp, vv + c, ldv, n, dst + c, ldo);
                if (c + 32 <= cols) { AttentionKernels.Pv6x32(p, ldp, vv + c, ldv, n, dst + c, ldo); c += 32; }
                if (c + 16 <= cols) AttentionKernels.Pv6x16(p, ldp, vv + c, ldv, n, dst + c, ldo);
            }
        }
    }

    /// <summary>The calling thread's buffer for every head's packed K and V (batch 1); grown on demand, freed with the thread.</summary>
    private sealed class SharedBuffer
    {
        [ThreadStatic] private static SharedBuffer? _mine;
        private float* _p;
        private long _cap;

        public static float* ForThread(long floats)
        {
            var s = _mine ??= new SharedBuffer();
            if (s._cap < floats)
            {
                NativeMemory.AlignedFree(s._p);
                s._p = (float*)NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);
                NativeMemory.Clear(s._p, (nuint)(floats * 4));
                s._cap = floats;
            }
            return s._p;
        }

        ~SharedBuffer() => NativeMemory.AlignedFree(_p);
    }

    /// <summary>Per-thread packed K, packed Q slivers and the score block; grown on demand, freed with the thread.</summary>
    private sealed class Buffers
    {
        [ThreadStatic] private static Buffers? _mine;
        public float* K, Q, S, V;
        private long _kCap, _qCap, _sCap, _vCap;

        public static Buffers ForThread(long k, long q, long s, long v)
        {
            var b = _mine ??= new Buffers();
            Grow(ref b.V, ref b._vCap, v);
            Grow(ref b.K, ref b._kCap, k);
            Grow(ref b.Q, ref b._qCap, q);
            Grow(ref b.S, ref b._sCap, s);
            return b;
        }

        private static void Grow(ref float* p, ref long cap, long floats)
        {
            if (cap >= floats) return;
            NativeMemory.AlignedFree(p);
            p = (float*)NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);
            NativeMemory.Clear(p, (nuint)(floats * 4));
            cap = floats;
        }

        ~Buffers() { NativeMemory.AlignedFree(K); NativeMemory.AlignedFree(Q); NativeMemory.AlignedFree(S); NativeMemory.AlignedFree(V); }
    }
}
