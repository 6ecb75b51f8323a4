using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSharp.Data.Codecs;

/// <summary>
/// The horizontal half of libjpeg's fancy upsampling, 16 input samples per step: even outputs weigh the left neighbour,
/// odd ones the right (3:1), with jdsample.c's biases. Inputs are padded by one replicated sample on each side so edges
/// need no special case; the same integer formulas as <see cref="JpegOutput"/>'s scalar code.
/// </summary>
internal static class JpegUpsampleSimd
{
    public static bool IsSupported => Avx2.IsSupported;

    /// <summary>padded[0] = s[-1], padded[1..n] = s, padded[n+1] = s[n]; writes min(2n, o.Length) outputs.
    /// <paramref name="shift"/> 4 with biases 8/7 for 2×2 column sums, 2 with 1/2 for 2×1 samples.</summary>
    public static void Horizontal(ReadOnlySpan<short> padded, int n, Span<byte> o, int shift, short evenBias, short oddBias)
    {
        int w = o.Length, i = 0;
        if (padded.Length < n + 2) throw new ArgumentException("padded row too short");
        ref short s = ref Unsafe.AsRef(in padded[0]);
        var three = Vector256.Create((short)3);
        var eb = Vector256.Create(evenBias); var ob = Vector256.Create(oddBias);
        for (; 2 * i + 32 <= w && i + 16 <= n; i += 16)
        {
            var left = Vector256.LoadUnsafe(ref s, (nuint)i);
            var mid = Vector256.LoadUnsafe(ref s, (nuint)(i + 1));
            var right = Vector256.LoadUnsafe(ref s, (nuint)(i + 2));
            var m3 = mid * three;
            var even = Vector256.ShiftRightArithmetic(m3 + left + eb, shift);
            var odd = Vector256.ShiftRightArithmetic(m3 + right + ob, shift);
            var lo = Avx2.UnpackLow(even, odd); var hi = Avx2.UnpackHigh(even, odd);
            var first = Avx2.Permute2x128(lo, hi, 0x20); var second = Avx2.Permute2x128(lo, hi, 0x31);
            Vector256.Narrow(first.AsUInt16(), second.AsUInt16()).StoreUnsafe(ref o[2 * i]);
        }
        for (; i < n; i++)
        {
            int x = 2 * i;
            if (x >= w) break;
            int v = padded[i + 1] * 3;
            o[x] = (byte)((v + padded[i] + evenBias) >> shift);
            if (x + 1 < w) o[x + 1] = (byte)((v + padded[i + 2] + oddBias) >> shift);
        }
    }
}
