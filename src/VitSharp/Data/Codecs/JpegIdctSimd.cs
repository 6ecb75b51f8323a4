using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSharp.Data.Codecs;

/// <summary>
/// The islow IDCT of <see cref="JpegIdct"/> on AVX2: eight columns at once in 32-bit lanes, a transpose, eight rows at
/// once, a transpose back. Same integer operations, so the same samples for every block whose output needs no range
/// limiting beyond 0–255 clamping; the final limit saturates (like libjpeg-turbo's own SIMD IDCT) instead of wrapping
/// as the C table does, which differs only on corrupt data whose values overflow ±384.
/// </summary>
internal static class JpegIdctSimd
{
    public static bool IsSupported => Avx2.IsSupported;

    const int ConstBits = 13, Pass1Bits = 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Load(ReadOnlySpan<short> coef, ReadOnlySpan<ushort> quant, int row)
    {
        var c = Avx2.ConvertToVector256Int32(Vector128.Create(coef.Slice(row * 8, 8)));
        var q = Avx2.ConvertToVector256Int32(Vector128.Create(quant.Slice(row * 8, 8)));
        return Avx2.MultiplyLow(c, q);
    }

    public static void Transform(ReadOnlySpan<short> coef, ReadOnlySpan<ushort> quant, Span<byte> output, int stride)
    {
        var i0 = Load(coef, quant, 0); var i1 = Load(coef, quant, 1); var i2 = Load(coef, quant, 2); var i3 = Load(coef, quant, 3);
        var i4 = Load(coef, quant, 4); var i5 = Load(coef, quant, 5); var i6 = Load(coef, quant, 6); var i7 = Load(coef, quant, 7);
        // Pass 1: columns (lanes are columns).
        Butterfly(ref i0, ref i1, ref i2, ref i3, ref i4, ref i5, ref i6, ref i7);
        var h1 = Vector256.Create(1 << (ConstBits - Pass1Bits - 1));
        i0 = Avx2.ShiftRightArithmetic(i0 + h1, ConstBits - Pass1Bits); i1 = Avx2.ShiftRightArithmetic(i1 + h1, ConstBits - Pass1Bits);
        i2 = Avx2.ShiftRightArithmetic(i2 + h1, ConstBits - Pass1Bits); i3 = Avx2.ShiftRightArithmetic(i3 + h1, ConstBits - Pass1Bits);
        i4 = Avx2.ShiftRightArithmetic(i4 + h1, ConstBits - Pass1Bits); i5 = Avx2.ShiftRightArithmetic(i5 + h1, ConstBits - Pass1Bits);
        i6 = Avx2.ShiftRightArithmetic(i6 + h1, ConstBits - Pass1Bits); i7 = Avx2.ShiftRightArithmetic(i7 + h1, ConstBits - Pass1Bits);
        // Pass 2: rows (after the transpose, lanes are rows and vector k holds column k).
        Transpose(ref i0, ref i1, ref i2, ref i3, ref i4, ref i5, ref i6, ref i7);
        Butterfly(ref i0, ref i1, ref i2, ref i3, ref i4, ref i5, ref i6, ref i7);
        const int s = ConstBits + Pass1Bits + 3;
        // Descale with rounding, add the 128 centre, clamp to 0..255.
        var h2 = Vector256.Create((1 << (s - 1)) + (128 << s));
        i0 = Clamp(Avx2.ShiftRightArithmetic(i0 + h2, s)); i1 = Clamp(Avx2.ShiftRightArithmetic(i1 + h2, s));
        i2 = Clamp(Avx2.ShiftRightArithmetic(i2 + h2, s)); i3 = Clamp(Avx2.ShiftRightArithmetic(i3 + h2, s));
        i4 = Clamp(Avx2.ShiftRightArithmetic(i4 + h2, s)); i5 = Clamp(Avx2.ShiftRightArithmetic(i5 + h2, s));
        i6 = Clamp(Avx2.ShiftRightArithmetic(i6 + h2, s)); i7 = Clamp(Avx2.ShiftRightArithmetic(i7 + h2, s));
        Transpose(ref i0, ref i1, ref i2, ref i3, ref i4, ref i5, ref i6, ref i7);
        var lo = Vector256.Narrow(Vector256.Narrow(i0, i1).AsUInt16(), Vector256.Narrow(i2, i3).AsUInt16()).AsUInt64();
        var hi = Vector256.Narrow(Vector256.Narrow(i4, i5).AsUInt16(), Vector256.Narrow(i6, i7).AsUInt16()).AsUInt64();
        ref byte o = ref output[0];
        Unsafe.WriteUnaligned(ref o, lo.GetElement(0));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, stride), lo.GetElement(1));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 2 * stride), lo.GetElement(2));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 3 * stride), lo.GetElement(3));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 4 * stride), hi.GetElement(0));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 5 * stride), hi.GetElement(1));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 6 * stride), hi.GetElement(2));
        if (output.Length < 7 * stride + 8) throw new ArgumentException("output block out of range");
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 7 * stride), hi.GetElement(3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Clamp(Vector256<int> v) => Avx2.Min(Avx2.Max(v, Vector256<int>.Zero), Vector256.Create(255));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Mul(Vector256<int> v, int c) => Avx2.MultiplyLow(v, Vector256.Create(c));

    /// <summary>The 1-D islow butterfly of jidctint.c on eight lanes; outputs replace the inputs (scaled by 2^13).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Butterfly(ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3,
        ref Vector256<int> i4, ref Vector256<int> i5, ref Vector256<int> i6, ref Vector256<int> i7)
    {
        var z1 = Mul(i2 + i6, 4433);
        var tmp2 = z1 + Mul(i6, -15137);
        var tmp3 = z1 + Mul(i2, 6270);
        var tmp0 = Avx2.ShiftLeftLogical(i0 + i4, ConstBits);
        var tmp1 = Avx2.ShiftLeftLogical(i0 - i4, ConstBits);
        var tmp10 = tmp0 + tmp3; var tmp13 = tmp0 - tmp3; var tmp11 = tmp1 + tmp2; var tmp12 = tmp1 - tmp2;
        Vector256<int> t0 = i7, t1 = i5, t2 = i3, t3 = i1;
        var z1o = t0 + t3; var z2 = t1 + t2; var z3 = t0 + t2; var z4 = t1 + t3;
        var z5 = Mul(z3 + z4, 9633);
        t0 = Mul(t0, 2446); t1 = Mul(t1, 16819); t2 = Mul(t2, 25172); t3 = Mul(t3, 12299);
        z1o = Mul(z1o, -7373); z2 = Mul(z2, -20995); z3 = Mul(z3, -16069) + z5; z4 = Mul(z4, -3196) + z5;
        t0 += z1o + z3; t1 += z2 + z4; t2 += z2 + z3; t3 += z1o + z4;
        i0 = tmp10 + t3; i7 = tmp10 - t3;
        i1 = tmp11 + t2; i6 = tmp11 - t2;
        i2 = tmp12 + t1; i5 = tmp12 - t1;
        i3 = tmp13 + t0; i4 = tmp13 - t0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        var t0 = Avx2.UnpackLow(r0, r1).AsInt64(); var t1 = Avx2.UnpackHigh(r0, r1).AsInt64();
        var t2 = Avx2.UnpackLow(r2, r3).AsInt64(); var t3 = Avx2.UnpackHigh(r2, r3).AsInt64();
        var t4 = Avx2.UnpackLow(r4, r5).AsInt64(); var t5 = Avx2.UnpackHigh(r4, r5).AsInt64();
        var t6 = Avx2.UnpackLow(r6, r7).AsInt64(); var t7 = Avx2.UnpackHigh(r6, r7).AsInt64();
        var u0 = Avx2.UnpackLow(t0, t2).AsInt32(); var u1 = Avx2.UnpackHigh(t0, t2).AsInt32();
        var u2 = Avx2.UnpackLow(t1, t3).AsInt32(); var u3 = Avx2.UnpackHigh(t1, t3).AsInt32();
        var u4 = Avx2.UnpackLow(t4, t6).AsInt32(); var u5 = Avx2.UnpackHigh(t4, t6).AsInt32();
        var u6 = Avx2.UnpackLow(t5, t7).AsInt32(); var u7 = Avx2.UnpackHigh(t5, t7).AsInt32();
        r0 = Avx2.Permute2x128(u0, u4, 0x20); r4 = Avx2.Permute2x128(u0, u4, 0x31);
        r1 = Avx2.Permute2x128(u1, u5, 0x20); r5 = Avx2.Permute2x128(u1, u5, 0x31);
        r2 = Avx2.Permute2x128(u2, u6, 0x20); r6 = Avx2.Permute2x128(u2, u6, 0x31);
        r3 = Avx2.Permute2x128(u3, u7, 0x20); r7 = Avx2.Permute2x128(u3, u7, 0x31);
    }
}
