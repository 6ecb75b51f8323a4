using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSharp.Data.Codecs;

/// <summary>jdcolor.c's YCbCr→RGB: per-value tables in 16-bit fixed point (FIX(x) = round(x·65536)), then clamping.</summary>
internal static class JpegColor
{
    const int ScaleBits = 16, Half = 1 << (ScaleBits - 1);
    static int Fix(double x) => (int)(x * (1 << ScaleBits) + 0.5);
    static readonly int[] CrR = new int[256], CbB = new int[256], CrG = new int[256], CbG = new int[256];

    static JpegColor()
    {
        for (int i = 0; i < 256; i++)
        {
            int x = i - 128;
            CrR[i] = (Fix(1.40200) * x + Half) >> ScaleBits;
            CbB[i] = (Fix(1.77200) * x + Half) >> ScaleBits;
            CrG[i] = -Fix(0.71414) * x;
            CbG[i] = -Fix(0.34414) * x + Half;
        }
    }

    static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    public static void YccToRgb(byte[] y, byte[] cb, byte[] cr, byte[] rgb, bool simd = true)
    {
        int start = simd && Avx2.IsSupported ? YccToRgbAvx2(y, cb, cr, rgb) : 0;
        for (int i = start; i < y.Length; i++)
        {
            int Y = y[i], b = cb[i], r = cr[i];
            rgb[3 * i] = Clamp(Y + CrR[r]);
            rgb[3 * i + 1] = Clamp(Y + ((CbG[b] + CrG[r]) >> ScaleBits));
            rgb[3 * i + 2] = Clamp(Y + CbB[b]);
        }
    }

    // pshufb masks that interleave 16 R, 16 G and 16 B bytes into 48 RGB bytes: Masks[3 * block + channel].
    static readonly Vector128<byte>[] Masks = BuildMasks();

    static Vector128<byte>[] BuildMasks()
    {
        var m = new Vector128<byte>[9];
        var b = new byte[16];
        for (int block = 0; block < 3; block++)
            for (int ch = 0; ch < 3; ch++)
            {
                for (int t = 0; t < 16; t++) { int j = 16 * block + t; b[t] = j % 3 == ch ? (byte)(j / 3) : (byte)0x80; }
                m[3 * block + ch] = Vector128.Create(b);
            }
        return m;
    }

    /// <summary>
    /// The same arithmetic as the tables, 16 pixels at a time: tables hold (FIX(c)·x + ½) >> 16, which the lanes compute
    /// directly in 32 bits. Returns how many pixels it converted (a multiple of 16).
    /// </summary>
    static unsafe int YccToRgbAvx2(byte[] y, byte[] cb, byte[] cr, byte[] rgb)
    {
        int n = y.Length & ~15;
        var m = Masks;
        var c128 = Vector256.Create(128);
        var half = Vector256.Create(Half);
        var fR = Vector256.Create(Fix(1.40200)); var fB = Vector256.Create(Fix(1.77200));
        var fGr = Vector256.Create(-Fix(0.71414)); var fGb = Vector256.Create(-Fix(0.34414));
        fixed (byte* py = y, pb = cb, pr = cr, po = rgb)
        {
            for (int i = 0; i < n; i += 16)
            {
                var r16 = Channels(py + i, pb + i, pr + i, c128, half, fR, fB, fGr, fGb, out var g16, out var b16);
                byte* o = po + 3 * i;
                Sse2.Store(o, Sse2.Or(Sse2.Or(Ssse3.Shuffle(r16, m[0]), Ssse3.Shuffle(g16, m[1])), Ssse3.Shuffle(b16, m[2])));
                Sse2.Store(o + 16, Sse2.Or(Sse2.Or(Ssse3.Shuffle(r16, m[3]), Ssse3.Shuffle(g16, m[4])), Ssse3.Shuffle(b16, m[5])));
                Sse2.Store(o + 32, Sse2.Or(Sse2.Or(Ssse3.Shuffle(r16, m[6]), Ssse3.Shuffle(g16, m[7])), Ssse3.Shuffle(b16, m[8])));
            }
        }
        return n;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector128<byte> Channels(byte* y, byte* cb, byte* cr, Vector256<int> c128, Vector256<int> half,
        Vector256<int> fR, Vector256<int> fB, Vector256<int> fGr, Vector256<int> fGb, out Vector128<byte> g, out Vector128<byte> b)
    {
        var y0 = Avx2.ConvertToVector256Int32(y); var y1 = Avx2.ConvertToVector256Int32(y + 8);
        var b0 = Avx2.ConvertToVector256Int32(cb) - c128; var b1 = Avx2.ConvertToVector256Int32(cb + 8) - c128;
        var r0 = Avx2.ConvertToVector256Int32(cr) - c128; var r1 = Avx2.ConvertToVector256Int32(cr + 8) - c128;
        var R0 = y0 + Avx2.ShiftRightArithmetic(Avx2.MultiplyLow(r0, fR) + half, ScaleBits);
        var R1 = y1 + Avx2.ShiftRightArithmetic(Avx2.MultiplyLow(r1, fR) + half, ScaleBits);
        var B0 = y0 + Avx2.ShiftRightArithmetic(Avx2.MultiplyLow(b0, fB) + half, ScaleBits);
        var B1 = y1 + Avx2.ShiftRightArithmetic(Avx2.MultiplyLow(b1, fB) + half, ScaleBits);
        var G0 = y0 + Avx2.ShiftRightArithmetic(Avx2.MultiplyLow(b0, fGb) + half + Avx2.MultiplyLow(r0, fGr), ScaleBits);
        var G1 = y1 + Avx2.ShiftRightArithmetic(Avx2.MultiplyLow(b1, fGb) + half + Avx2.MultiplyLow(r1, fGr), ScaleBits);
        g = Pack(G0, G1); b = Pack(B0, B1);
        return Pack(R0, R1);
    }

    /// <summary>16 int lanes → 16 bytes with unsigned saturation (the clamp to 0–255), in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<byte> Pack(Vector256<int> a, Vector256<int> b)
    {
        var s = Avx2.PackSignedSaturate(a, b);                 // per 128-bit lane: a0-3 b0-3 | a4-7 b4-7
        s = Avx2.Permute4x64(s.AsInt64(), 0b11_01_10_00).AsInt16(); // a0-3 a4-7 b0-3 b4-7
        var bytes = Avx2.PackUnsignedSaturate(s, s);           // 16 bytes in each lane, duplicated
        return Avx2.Permute4x64(bytes.AsInt64(), 0b10_00_10_00).AsByte().GetLower();
    }

    /// <summary>Adobe CMYK (stored inverted) or YCCK → RGB: R = C'·K'/255 etc. on the stored (inverted) values.</summary>
    public static void CmykToRgb(byte[][] p, byte[] rgb, bool ycck)
    {
        int n = p[0].Length;
        for (int i = 0; i < n; i++)
        {
            int c0 = p[0][i], c1 = p[1][i], c2 = p[2][i], k = p[3][i];
            if (ycck)
            {   // YCC → inverted CMY (libjpeg's ycck_cmyk_convert: 255 - RGB)
                int y = c0, cb = c1, cr = c2;
                c0 = 255 - Clamp(y + CrR[cr]);
                c1 = 255 - Clamp(y + ((CbG[cb] + CrG[cr]) >> ScaleBits));
                c2 = 255 - Clamp(y + CbB[cb]);
            }
            rgb[3 * i] = (byte)((c0 * k + 127) / 255);
            rgb[3 * i + 1] = (byte)((c1 * k + 127) / 255);
            rgb[3 * i + 2] = (byte)((c2 * k + 127) / 255);
        }
    }
}
