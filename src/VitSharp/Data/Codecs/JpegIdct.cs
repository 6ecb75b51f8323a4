namespace VitSharp.Data.Codecs;

/// <summary>
/// libjpeg's "islow" inverse DCT (jidctint.c: Loeffler–Ligtenberg–Moschytz with 13-bit constants, 2 extra bits kept
/// between passes), reproduced operation for operation so output matches libjpeg-turbo's default exactly, including its
/// range-limit table (out-of-range values of corrupt data wrap the way libjpeg's masked table does).
/// </summary>
internal static class JpegIdct
{
    const int ConstBits = 13, Pass1Bits = 2;
    const int F0_298631336 = 2446, F0_390180644 = 3196, F0_541196100 = 4433, F0_765366865 = 6270,
        F0_899976223 = 7373, F1_175875602 = 9633, F1_501321110 = 12299, F1_847759065 = 15137,
        F1_961570560 = 16069, F2_053119869 = 16819, F2_562915447 = 20995, F3_072711026 = 25172;

    /// <summary>libjpeg's post-IDCT range limit, indexed by (x &amp; 1023) where x is the centred output.</summary>
    static readonly byte[] RangeLimit = BuildRangeLimit();

    static byte[] BuildRangeLimit()
    {
        var t = new byte[1024];
        for (int j = 0; j < 1024; j++) t[j] = (byte)(j < 128 ? j + 128 : j < 512 ? 255 : j < 896 ? 0 : j - 896);
        return t;
    }

    /// <summary>Transforms one block of quantised coefficients (natural order) times <paramref name="quant"/> into 8×8 samples.</summary>
    public static void Transform(ReadOnlySpan<short> coef, ReadOnlySpan<ushort> quant, Span<byte> output, int stride)
    {
        Span<int> ws = stackalloc int[64];
        for (int c = 0; c < 8; c++)
        {
            if (coef[8 + c] == 0 && coef[16 + c] == 0 && coef[24 + c] == 0 && coef[32 + c] == 0 &&
                coef[40 + c] == 0 && coef[48 + c] == 0 && coef[56 + c] == 0)
            {
                int dc = coef[c] * quant[c] << Pass1Bits;
                for (int r = 0; r < 8; r++) ws[r * 8 + c] = dc;
                continue;
            }
            Butterfly(coef[c] * quant[c], coef[8 + c] * quant[8 + c], coef[16 + c] * quant[16 + c], coef[24 + c] * quant[24 + c],
                coef[32 + c] * quant[32 + c], coef[40 + c] * quant[40 + c], coef[48 + c] * quant[48 + c], coef[56 + c] * quant[56 + c],
                out int o0, out int o1, out int o2, out int o3, out int o4, out int o5, out int o6, out int o7);
            const int s = ConstBits - Pass1Bits, half = 1 << (s - 1);
            ws[c] = (o0 + half) >> s; ws[56 + c] = (o7 + half) >> s;
            ws[8 + c] = (o1 + half) >> s; ws[48 + c] = (o6 + half) >> s;
            ws[16 + c] = (o2 + half) >> s; ws[40 + c] = (o5 + half) >> s;
            ws[24 + c] = (o3 + half) >> s; ws[32 + c] = (o4 + half) >> s;
        }
        var rl = RangeLimit;
        for (int r = 0; r < 8; r++)
        {
            var w = ws.Slice(r * 8, 8);
            var o = output.Slice(r * stride, 8);
            const int s = ConstBits + Pass1Bits + 3, half = 1 << (s - 1);
            if (w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0)
            {
                byte v = rl[((w[0] + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3)) & 1023];
                o.Fill(v);
                continue;
            }
            Butterfly(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
                out int o0, out int o1, out int o2, out int o3, out int o4, out int o5, out int o6, out int o7);
            o[0] = rl[((o0 + half) >> s) & 1023]; o[7] = rl[((o7 + half) >> s) & 1023];
            o[1] = rl[((o1 + half) >> s) & 1023]; o[6] = rl[((o6 + half) >> s) & 1023];
            o[2] = rl[((o2 + half) >> s) & 1023]; o[5] = rl[((o5 + half) >> s) & 1023];
            o[3] = rl[((o3 + half) >> s) & 1023]; o[4] = rl[((o4 + half) >> s) & 1023];
        }
    }

    /// <summary>The 1-D islow transform before descaling (outputs scaled by 2^13).</summary>
    static void Butterfly(int i0, int i1, int i2, int i3, int i4, int i5, int i6, int i7,
        out int o0, out int o1, out int o2, out int o3, out int o4, out int o5, out int o6, out int o7)
    {
        // Even part
        int z1 = (i2 + i6) * F0_541196100;
        int tmp2 = z1 + i6 * -F1_847759065;
        int tmp3 = z1 + i2 * F0_765366865;
        int tmp0 = (i0 + i4) << ConstBits;
        int tmp1 = (i0 - i4) << ConstBits;
        int tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
        // Odd part
        int t0 = i7, t1 = i5, t2 = i3, t3 = i1;
        int z1o = t0 + t3, z2 = t1 + t2, z3 = t0 + t2, z4 = t1 + t3;
        int z5 = (z3 + z4) * F1_175875602;
        t0 *= F0_298631336; t1 *= F2_053119869; t2 *= F3_072711026; t3 *= F1_501321110;
        z1o *= -F0_899976223; z2 *= -F2_562915447; z3 *= -F1_961570560; z4 *= -F0_390180644;
        z3 += z5; z4 += z5;
        t0 += z1o + z3; t1 += z2 + z4; t2 += z2 + z3; t3 += z1o + z4;
        o0 = tmp10 + t3; o7 = tmp10 - t3;
        o1 = tmp11 + t2; o6 = tmp11 - t2;
        o2 = tmp12 + t1; o5 = tmp12 - t1;
        o3 = tmp13 + t0; o4 = tmp13 - t0;
    }
}
