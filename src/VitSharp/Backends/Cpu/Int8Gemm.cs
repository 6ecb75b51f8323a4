using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using VitSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace VitSharp.Backends.Cpu;

/// <summary>Which int8 micro-kernel runs; settable so tests compare the VNNI kernel with the portable one.</summary>
internal enum Int8Isa { Avx512Vnni, AvxVnni, Scalar }

/// <summary>
/// The int8 Linear: y = act(dequant(q(x) · Qᵀ) + b) (+ y), with Q an <see cref="Int8Matrix"/> (symmetric per output
/// channel) and q(x) the input quantised per row (token), dynamically: s_m = max_k |x[m, k]| / 127,
/// q = round-half-even(x / s_m) in [−127, 127]. vpdpbusd multiplies unsigned by signed bytes, so the row is stored
/// shifted, u = q + 128 (q xor 0x80), and 128·Σ_k Q[n, k] (precomputed per weight) is taken off each int32 sum: the
/// dot product Σ q·Q is exact (|sum| ≤ K·127·255 fits int32 for K below 66,000). Then y = (float)dot · (s_m · S_n) + b.
/// Everything else (LayerNorm, softmax, GELU, the residual stream) stays fp32.
///
/// Blocking: 6 rows × 32 output channels per micro-tile, 24 ymm accumulators (AVX-512 machines have 32 vector
/// registers; on AVX-VNNI-only parts the JIT spills a few); work items are blocks of about 48 rows × 128 channels,
/// channels outer so a 32-channel weight panel (32·K bytes) is reused from L1/L2 by every row tile of the block.
/// The portable kernel computes the same int32 sums and the same float epilogue, so results are bit-identical.
/// </summary>
internal static unsafe class Int8Gemm
{
    internal static Int8Isa Isa = Int8ZmmKernel.IsSupported ? Int8Isa.Avx512Vnni : AvxVnni.IsSupported ? Int8Isa.AvxVnni : Int8Isa.Scalar;

    internal static int BlockRows = 48;
    internal static int PairsPerBlock = 4;        // 128 output channels

    [ThreadStatic] private static byte* _u;
    [ThreadStatic] private static long _uCap;
    [ThreadStatic] private static float* _f;
    [ThreadStatic] private static long _fCap;

    /// <summary>C[M, N] (stride ldc) = act(A[M, K] (stride lda) · Wᵀ dequantised + bias) (+ C when accumulate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int M, float* A, int lda, Int8Matrix w, float* C, int ldc, bool accumulate, float* bias, Activation act)
    {
        if (M <= 0) return;
        int n = w.N;
        if (accumulate && act != Activation.None)
        {
            // Not a ViT pattern: compute act(x·Wᵀ + b) apart, then add.
            float* t = Floats((long)M * n);
            Run(M, A, lda, w, t, n, false, bias, act);
            for (int r = 0; r < M; r++)
                TensorPrimitives.Add(new ReadOnlySpan<float>(t + (long)r * n, n), new ReadOnlySpan<float>(C + (long)r * ldc, n), new Span<float>(C + (long)r * ldc, n));
            return;
        }
        var isa = Isa;
        int mr = isa == Int8Isa.Avx512Vnni ? Int8ZmmKernel.Rows : 6;   // tile height; rows are padded to a multiple
        int kp = w.KPadded, mp = (M + mr - 1) / mr * mr;
        byte* u = Bytes((long)mp * kp + (long)mp * 4);
        float* rs = (float*)(u + (long)mp * kp);
        Quantize(M, mp, A, lda, w.K, kp, u, rs);
        var e = new Epilogue(C, ldc, M, n, rs, w.ScalePointer, w.SumPointer, bias, accumulate);
        sbyte* packed = w.Packed;
        int rowTiles = mp / mr, pairs = (w.NPadded / 16 + 1) / 2, tilesPerBlock = Math.Max(1, BlockRows / mr);
        int mBlocks = (rowTiles + tilesPerBlock - 1) / tilesPerBlock, nBlocks = (pairs + PairsPerBlock - 1) / PairsPerBlock;
        int npad = w.NPadded, groups = kp / 4;
        CpuThreads.For(mBlocks * nBlocks, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int t) =>
        {
            int mb = t / nBlocks, nb = t % nBlocks;
            int r0 = (int)((long)rowTiles * mb / mBlocks) * mr, r1 = (int)((long)rowTiles * (mb + 1) / mBlocks) * mr;
            int c0 = Math.Min(npad, (int)((long)pairs * nb / nBlocks) * 32), c1 = Math.Min(npad, (int)((long)pairs * (nb + 1) / nBlocks) * 32);
            if (isa == Int8Isa.Avx512Vnni)
            {
                int* tile = stackalloc int[Int8ZmmKernel.Rows * Int8ZmmKernel.Cols];   // the kernel's int32 sums (1 KiB)
                for (int c = c0; c < c1; c += 32)
                {
                    // A last 16-channel panel alone: the kernel reads it twice (b1 = b0) and the upper half is not stored.
                    sbyte* b0 = packed + (long)c * kp, b1 = c + 32 <= c1 ? b0 + 16L * kp : b0;
                    int quads = c + 32 <= c1 ? 4 : 2;
                    for (int r = r0; r < r1; r += Int8ZmmKernel.Rows)
                    {
                        Int8ZmmKernel.Run(u + (long)r * kp, kp, b0, b1, groups, tile);
                        for (int i = 0; i < Int8ZmmKernel.Rows; i++)
                            for (int q = 0; q < quads; q++) e.Store(r + i, c + 8 * q, Vector256.Load(tile + i * Int8ZmmKernel.Cols + 8 * q));
                    }
                }
            }
            else if (isa == Int8Isa.AvxVnni)
            {
                for (int c = c0; c < c1; c += 32)
                {
                    sbyte* b0 = packed + (long)c * kp, b1 = b0 + 16L * kp;
                    if (c + 32 <= c1)
                        for (int r = r0; r < r1; r += 6) Tile6x32(u + (long)r * kp, kp, b0, b1, groups, in e, r, c);
                    else
                        for (int r = r0; r < r1; r += 6) Tile6x16(u + (long)r * kp, kp, b0, b1, groups, in e, r, c);
                }
            }
            else ScalarBlock(u, kp, w, in e, r0, Math.Min(r1, M), c0, Math.Min(c1, n));
            if (act != Activation.None)
                for (int r = r0; r < Math.Min(r1, M); r++)
                {
                    int cn = Math.Min(c1, n) - c0;
                    if (cn > 0) Activations.Apply(act, new ReadOnlySpan<float>(C + (long)r * ldc + c0, cn), new Span<float>(C + (long)r * ldc + c0, cn));
                }
        });
    }

    /// <summary>Rows [0, M) of A quantised per row to u = q + 128 (K padded to kp with 128, i.e. q = 0) and their scales;
    /// rows [M, mp) are zero rows (u = 128, scale 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Quantize(int M, int mp, float* A, int lda, int K, int kp, byte* u, float* rs)
    {
        CpuThreads.ForRange(mp, Math.Max(1, 16384 / Math.Max(1, K)), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int s, int e) =>
        {
            for (int r = s; r < e; r++) QuantizeRow(r < M ? A + (long)r * lda : null, K, kp, u + (long)r * kp, out rs[r]);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeRow(float* x, int K, int kp, byte* u, out float scale)
    {
        new Span<byte>(u, kp).Fill(128);
        if (x == null) { scale = 0; return; }
        var row = new ReadOnlySpan<float>(x, K);
        float max = Math.Abs(TensorPrimitives.MaxMagnitude(row));
        if (max == 0 || !float.IsFinite(max)) { scale = max == 0 ? 0 : float.NaN; return; }
        scale = max / 127f;
        float inv = 127f / max;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vinv = Vector512.Create(inv);
            var lo = Vector512.Create(-127f);
            var hi = Vector512.Create(127f);
            var flip = Vector512.Create((sbyte)-128);
            for (; i + 64 <= K; i += 64)
            {
                var q0 = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(Vector512.Round(Vector512.Load(x + i) * vinv), lo), hi));
                var q1 = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(Vector512.Round(Vector512.Load(x + i + 16) * vinv), lo), hi));
                var q2 = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(Vector512.Round(Vector512.Load(x + i + 32) * vinv), lo), hi));
                var q3 = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(Vector512.Round(Vector512.Load(x + i + 48) * vinv), lo), hi));
                var b = Vector512.Narrow(Vector512.Narrow(q0, q1), Vector512.Narrow(q2, q3)) ^ flip;
                b.AsByte().Store(u + i);
            }
        }
        for (; i < K; i++) u[i] = (byte)((int)Math.Clamp(MathF.Round(x[i] * inv), -127f, 127f) + 128);
    }

    /// <summary>The portable kernel: the same int32 sums from the row-major values, the same epilogue.</summary>
    private static void ScalarBlock(byte* u, int kp, Int8Matrix w, in Epilogue e, int r0, int r1, int c0, int c1)
    {
        var values = w.Values;
        int k = w.K;
        int* sums = stackalloc int[8];
        fixed (sbyte* q = values)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* ur = u + (long)r * kp;
                for (int c = c0; c < c1; c += 8)
                {
                    for (int j = 0; j < 8; j++)
                    {
                        int acc = 0;
                        if (c + j < c1)
                        {
                            sbyte* qr = q + (long)(c + j) * k;
                            for (int i = 0; i < k; i++) acc += ur[i] * qr[i];
                        }
                        sums[j] = acc;
                    }
                    e.Store(r, c, Vector256.Load(sums));
                }
            }
        }
    }

    /// <summary>What happens to an int32 tile: subtract 128·ΣQ, scale by s_m·S_n, add the bias, store or accumulate.</summary>
    internal readonly struct Epilogue(float* c, int ldc, int m, int n, float* rowScale, float* colScale, int* colSum, float* bias, bool accumulate)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(int row, int col, Vector256<int> acc)
        {
            int cnt = n - col;
            if (row >= m || cnt <= 0) return;
            var f = Vector256.ConvertToSingle(acc - Vector256.Load(colSum + col)) * (Vector256.Load(colScale + col) * rowScale[row]);
            float* dst = c + (long)row * ldc + col;
            if (cnt >= 8)
            {
                if (bias != null) f += Vector256.Load(bias + col);
                if (accumulate) f += Vector256.Load(dst);
                f.Store(dst);
                return;
            }
            for (int i = 0; i < cnt; i++)
            {
                float v = f.GetElement(i);
                if (bias != null) v += bias[col + i];
                dst[i] = accumulate ? dst[i] + v : v;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile6x32(byte* a, int kp, sbyte* b0, sbyte* b1, int groups, in Epilogue e, int row, int col)
    {
        Vector256<int> c00 = Vector256<int>.Zero, c01 = Vector256<int>.Zero, c02 = Vector256<int>.Zero, c03 = Vector256<int>.Zero, c10 = Vector256<int>.Zero, c11 = Vector256<int>.Zero, c12 = Vector256<int>.Zero, c13 = Vector256<int>.Zero, c20 = Vector256<int>.Zero, c21 = Vector256<int>.Zero, c22 = Vector256<int>.Zero, c23 = Vector256<int>.Zero, c30 = Vector256<int>.Zero, c31 = Vector256<int>.Zero, c32 = Vector256<int>.Zero, c33 = Vector256<int>.Zero, c40 = Vector256<int>.Zero, c41 = Vector256<int>.Zero, c42 = Vector256<int>.Zero, c43 = Vector256<int>.Zero, c50 = Vector256<int>.Zero, c51 = Vector256<int>.Zero, c52 = Vector256<int>.Zero, c53 = Vector256<int>.Zero;
        for (int g = 0; g < groups; g++)
        {
            long o = (long)g * 64;
            var w0 = Vector256.Load(b0 + o); var w1 = Vector256.Load(b0 + o + 32);
            var w2 = Vector256.Load(b1 + o); var w3 = Vector256.Load(b1 + o + 32);
            byte* ag = a + g * 4;
            var x = Vector256.Create(*(int*)ag).AsByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, x, w0);
            c01 = AvxVnni.MultiplyWideningAndAdd(c01, x, w1);
            c02 = AvxVnni.MultiplyWideningAndAdd(c02, x, w2);
            c03 = AvxVnni.MultiplyWideningAndAdd(c03, x, w3);
            x = Vector256.Create(*(int*)(ag + 1 * kp)).AsByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, x, w0);
            c11 = AvxVnni.MultiplyWideningAndAdd(c11, x, w1);
            c12 = AvxVnni.MultiplyWideningAndAdd(c12, x, w2);
            c13 = AvxVnni.MultiplyWideningAndAdd(c13, x, w3);
            x = Vector256.Create(*(int*)(ag + 2 * kp)).AsByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, x, w0);
            c21 = AvxVnni.MultiplyWideningAndAdd(c21, x, w1);
            c22 = AvxVnni.MultiplyWideningAndAdd(c22, x, w2);
            c23 = AvxVnni.MultiplyWideningAndAdd(c23, x, w3);
            x = Vector256.Create(*(int*)(ag + 3 * kp)).AsByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, x, w0);
            c31 = AvxVnni.MultiplyWideningAndAdd(c31, x, w1);
            c32 = AvxVnni.MultiplyWideningAndAdd(c32, x, w2);
            c33 = AvxVnni.MultiplyWideningAndAdd(c33, x, w3);
            x = Vector256.Create(*(int*)(ag + 4 * kp)).AsByte();
            c40 = AvxVnni.MultiplyWideningAndAdd(c40, x, w0);
            c41 = AvxVnni.MultiplyWideningAndAdd(c41, x, w1);
            c42 = AvxVnni.MultiplyWideningAndAdd(c42, x, w2);
            c43 = AvxVnni.MultiplyWideningAndAdd(c43, x, w3);
            x = Vector256.Create(*(int*)(ag + 5 * kp)).AsByte();
            c50 = AvxVnni.MultiplyWideningAndAdd(c50, x, w0);
            c51 = AvxVnni.MultiplyWideningAndAdd(c51, x, w1);
            c52 = AvxVnni.MultiplyWideningAndAdd(c52, x, w2);
            c53 = AvxVnni.MultiplyWideningAndAdd(c53, x, w3);
        }
        e.Store(row + 0, col + 0, c00);
        e.Store(row + 0, col + 8, c01);
        e.Store(row + 0, col + 16, c02);
        e.Store(row + 0, col + 24, c03);
        e.Store(row + 1, col + 0, c10);
        e.Store(row + 1, col + 8, c11);
        e.Store(row + 1, col + 16, c12);
        e.Store(row + 1, col + 24, c13);
        e.Store(row + 2, col + 0, c20);
        e.Store(row + 2, col + 8, c21);
        e.Store(row + 2, col + 16, c22);
        e.Store(row + 2, col + 24, c23);
        e.Store(row + 3, col + 0, c30);
        e.Store(row + 3, col + 8, c31);
        e.Store(row + 3, col + 16, c32);
        e.Store(row + 3, col + 24, c33);
        e.Store(row + 4, col + 0, c40);
        e.Store(row + 4, col + 8, c41);
        e.Store(row + 4, col + 16, c42);
        e.Store(row + 4, col + 24, c43);
        e.Store(row + 5, col + 0, c50);
        e.Store(row + 5, col + 8, c51);
        e.Store(row + 5, col + 16, c52);
        e.Store(row + 5, col + 24, c53);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile6x16(byte* a, int kp, sbyte* b0, sbyte* b1, int groups, in Epilogue e, int row, int col)
    {
        Vector256<int> c00 = Vector256<int>.Zero, c01 = Vector256<int>.Zero, c10 = Vector256<int>.Zero, c11 = Vector256<int>.Zero, c20 = Vector256<int>.Zero, c21 = Vector256<int>.Zero, c30 = Vector256<int>.Zero, c31 = Vector256<int>.Zero, c40 = Vector256<int>.Zero, c41 = Vector256<int>.Zero, c50 = Vector256<int>.Zero, c51 = Vector256<int>.Zero;
        for (int g = 0; g < groups; g++)
        {
            long o = (long)g * 64;
            var w0 = Vector256.Load(b0 + o); var w1 = Vector256.Load(b0 + o + 32);
            byte* ag = a + g * 4;
            var x = Vector256.Create(*(int*)ag).AsByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, x, w0);
            c01 = AvxVnni.MultiplyWideningAndAdd(c01, x, w1);
            x = Vector256.Create(*(int*)(ag + 1 * kp)).AsByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, x, w0);
            c11 = AvxVnni.MultiplyWideningAndAdd(c11, x, w1);
            x = Vector256.Create(*(int*)(ag + 2 * kp)).AsByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, x, w0);
            c21 = AvxVnni.MultiplyWideningAndAdd(c21, x, w1);
            x = Vector256.Create(*(int*)(ag + 3 * kp)).AsByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, x, w0);
            c31 = AvxVnni.MultiplyWideningAndAdd(c31, x, w1);
            x = Vector256.Create(*(int*)(ag + 4 * kp)).AsByte();
            c40 = AvxVnni.MultiplyWideningAndAdd(c40, x, w0);
            c41 = AvxVnni.MultiplyWideningAndAdd(c41, x, w1);
            x = Vector256.Create(*(int*)(ag + 5 * kp)).AsByte();
            c50 = AvxVnni.MultiplyWideningAndAdd(c50, x, w0);
            c51 = AvxVnni.MultiplyWideningAndAdd(c51, x, w1);
        }
        e.Store(row + 0, col + 0, c00);
        e.Store(row + 0, col + 8, c01);
        e.Store(row + 1, col + 0, c10);
        e.Store(row + 1, col + 8, c11);
        e.Store(row + 2, col + 0, c20);
        e.Store(row + 2, col + 8, c21);
        e.Store(row + 3, col + 0, c30);
        e.Store(row + 3, col + 8, c31);
        e.Store(row + 4, col + 0, c40);
        e.Store(row + 4, col + 8, c41);
        e.Store(row + 5, col + 0, c50);
        e.Store(row + 5, col + 8, c51);
    }

    private static byte* Bytes(long n)
    {
        if (_uCap < n) { NativeMemory.AlignedFree(_u); _u = (byte*)NativeMemory.AlignedAlloc((nuint)n, 64); _uCap = n; }
        return _u;
    }

    private static float* Floats(long n)
    {
        if (_fCap < n) { NativeMemory.AlignedFree(_f); _f = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 64); _fCap = n; }
        return _f;
    }
}
