using System.Runtime.InteropServices;

namespace VitSharp.Tensors;

/// <summary>
/// A Linear weight (out N, in K) quantised to int8, symmetric per output channel: w[n, k] ≈ Q[n, k] · Scale[n], with
/// Scale[n] = max_k |w[n, k]| / 127 and Q = round-half-even(w / Scale) in [−127, 127]. Holds the row-major values (what a
/// file stores), the per-channel scales, and a copy packed for the int8 matrix product: blocks of 16 output channels,
/// each a run of groups of 4 consecutive K values per channel (the operand layout of vpdpbusd, 64 bytes per group),
/// K padded to a multiple of 4 and N to a multiple of 16 with zeros. <see cref="ColumnSums"/> holds 128·Σ_k Q[n, k], what
/// the product subtracts after multiplying shifted (unsigned) activations. Owns native memory.
/// </summary>
public sealed unsafe class Int8Matrix : IDisposable
{
    public int N { get; }
    public int K { get; }
    /// <summary>K rounded up to a multiple of 4 and N to a multiple of 16: the packed copy's dimensions.</summary>
    public int KPadded { get; }
    public int NPadded { get; }
    /// <summary>Row-major Q (N × K).</summary>
    public sbyte[] Values { get; }
    /// <summary>Scale per output channel (N, padded with zeros to NPadded).</summary>
    public float[] Scales { get; }
    /// <summary>128 · Σ_k Q[n, k] per output channel (NPadded).</summary>
    public int[] ColumnSums { get; }
    private sbyte* _packed;
    private float* _scales;
    private int* _sums;

    private Int8Matrix(sbyte[] values, float[] scales, int n, int k)
    {
        N = n; K = k;
        KPadded = (k + 3) & ~3;
        NPadded = (n + 15) & ~15;
        Values = values;
        Scales = new float[NPadded];
        scales.AsSpan(0, n).CopyTo(Scales);
        ColumnSums = new int[NPadded];
        long bytes = (long)NPadded * KPadded;
        _packed = (sbyte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        new Span<sbyte>(_packed, checked((int)bytes)).Clear();
        Pack(values, n, k, KPadded, _packed, ColumnSums);
        _scales = (float*)NativeMemory.AlignedAlloc((nuint)(NPadded * 8), 64);
        _sums = (int*)(_scales + NPadded);
        Scales.CopyTo(new Span<float>(_scales, NPadded));
        ColumnSums.CopyTo(new Span<int>(_sums, NPadded));
    }

    /// <summary>Rows of Q into the packed layout (groups of 4 K values, one 4-byte word per channel and group) and
    /// 128·Σ_k Q per row. Runs once per weight at load; fully optimised from the first call (it is one long loop).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Pack(sbyte[] values, int n, int k, int kPadded, sbyte* packed, int[] sums)
    {
        fixed (sbyte* v = values)
            for (int r = 0; r < n; r++)
            {
                sbyte* row = v + (long)r * k;
                sbyte* dst = packed + (long)(r / 16) * 16 * kPadded + (r % 16) * 4;
                int full = k & ~3, sum = 0;
                for (int i = 0; i < full; i += 4, dst += 64)
                {
                    *(uint*)dst = *(uint*)(row + i);
                    sum += row[i] + row[i + 1] + row[i + 2] + row[i + 3];
                }
                for (int i = full; i < k; i++) { dst[i - full] = row[i]; sum += row[i]; }
                sums[r] = 128 * sum;
            }
    }

    /// <summary>Native copies of <see cref="Scales"/> and <see cref="ColumnSums"/> (NPadded each), for the kernels.</summary>
    internal float* ScalePointer => _scales != null ? _scales : throw new ObjectDisposedException(nameof(Int8Matrix));
    internal int* SumPointer => _sums != null ? _sums : throw new ObjectDisposedException(nameof(Int8Matrix));

    /// <summary>The packed copy: NPadded/16 blocks of KPadded/4 groups of 64 bytes.</summary>
    public sbyte* Packed => _packed != null ? _packed : throw new ObjectDisposedException(nameof(Int8Matrix));

    /// <summary>Bytes the int8 copy of the weight occupies (values + packed copy + scales and sums).</summary>
    public long Bytes => Values.LongLength + (long)NPadded * KPadded + 8L * NPadded;

    /// <summary>Quantises a float weight (N × K, row-major).</summary>
    public static Int8Matrix Quantize(ReadOnlySpan<float> w, int n, int k)
    {
        var (q, s) = QuantizeRows(w, n, k);
        return new Int8Matrix(q, s, n, k);
    }

    /// <summary>Symmetric per-row int8: the values Q (N × K) and scales (N) — the one quantiser files and kernels share.</summary>
    public static (sbyte[] Values, float[] Scales) QuantizeRows(ReadOnlySpan<float> w, int n, int k)
    {
        if (n <= 0 || k <= 0 || w.Length != (long)n * k) throw new ArgumentException($"cannot quantise {w.Length} floats as {n}×{k}");
        var q = new sbyte[(long)n * k];
        var s = new float[n];
        for (int r = 0; r < n; r++)
        {
            var row = w.Slice(r * k, k);
            float max = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(row);
            max = Math.Abs(max);
            if (!float.IsFinite(max)) throw new ArgumentException($"row {r} of the weight holds a non-finite value");
            float scale = max / 127f;
            s[r] = scale;
            if (scale == 0) continue;
            float inv = 127f / max;
            for (int i = 0; i < k; i++) q[(long)r * k + i] = (sbyte)Math.Clamp(MathF.Round(row[i] * inv), -127f, 127f);
        }
        return (q, s);
    }

    /// <summary>From stored values (N × K) and per-channel scales (N), e.g. a quantised checkpoint's.</summary>
    public static Int8Matrix FromQuantized(sbyte[] values, float[] scales, int n, int k)
    {
        if (values.LongLength != (long)n * k || scales.Length != n) throw new ArgumentException($"int8 weight of {values.Length} values, {scales.Length} scales is not {n}×{k}");
        return new Int8Matrix(values, scales, n, k);
    }

    /// <summary>Q[n, k] · Scale[n] as floats (N × K).</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)N * K];
        for (int r = 0; r < N; r++)
            for (int i = 0; i < K; i++) w[(long)r * K + i] = Values[(long)r * K + i] * Scales[r];
        return w;
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (_packed != null) { NativeMemory.AlignedFree(_packed); _packed = null; }
        if (_scales != null) { NativeMemory.AlignedFree(_scales); _scales = null; _sums = null; }
    }

    ~Int8Matrix() => Free();
}
