using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VitSharp.Data.Codecs;

/// <summary>
/// Entropy decoding of one scan (T.81 Annex F for sequential, Annex G for progressive) into the components'
/// coefficient arrays. Corrupt data never reads outside the buffers: run lengths past coefficient 63 land on 63,
/// as libjpeg's padded natural-order table makes them do.
/// </summary>
internal static class JpegScan
{
    /// <summary>Zig-zag index → natural (row-major) index; 16 extra entries absorb overlong runs in corrupt data.</summary>
    public static readonly int[] ZigZag =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
        63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    ];

    const int MaxScans = 1000;


    public static void Decode(JpegState st, ReadOnlySpan<byte> seg)
    {
        if (++st.ScanCount > MaxScans) throw st.Error($"more than {MaxScans} scans");
        if (seg.Length < 1) throw st.Error("short SOS segment");
        int ns = seg[0];
        if (ns < 1 || ns > 4 || seg.Length < 4 + 2 * ns) throw st.Error("bad SOS segment");
        var comps = new JpegComponent[ns];
        var dc = new JpegHuffmanTable?[ns];
        var ac = new JpegHuffmanTable?[ns];
        for (int i = 0; i < ns; i++)
        {
            int id = seg[1 + 2 * i];
            comps[i] = st.Components.FirstOrDefault(c => c.Id == id) ?? throw st.Error($"scan names unknown component {id}");
            for (int j = 0; j < i; j++) if (comps[j] == comps[i]) throw st.Error("component listed twice in a scan");
            dc[i] = st.DcTables[seg[2 + 2 * i] >> 4 & 3];
            ac[i] = st.AcTables[seg[2 + 2 * i] & 3];
            if (seg[2 + 2 * i] >> 4 > 3 || (seg[2 + 2 * i] & 15) > 3) throw st.Error("bad Huffman table index in SOS");
        }
        int ss = seg[1 + 2 * ns], se = seg[2 + 2 * ns], ah = seg[3 + 2 * ns] >> 4, al = seg[3 + 2 * ns] & 15;
        if (st.Progressive)
        {
            bool bad = ss > se || se > 63 || al > 13 || (ss == 0 && se != 0) || (ss > 0 && ns != 1) || (ah != 0 && ah - 1 != al);
            if (bad) throw st.Error($"invalid progressive scan parameters Ss={ss} Se={se} Ah={ah} Al={al}");
        }
        else { ss = 0; se = 63; ah = 0; al = 0; }
        int blocksPerMcu = 0;
        for (int i = 0; i < ns; i++)
        {
            var c = comps[i];
            c.Quant ??= st.QuantTables[c.QuantIndex] ?? throw st.Error($"quantisation table {c.QuantIndex} is not defined");
            bool needDc = ss == 0 && ah == 0, needAc = se > 0;
            if (needDc && dc[i] is null) throw st.Error("scan uses an undefined DC Huffman table");
            if (needAc && ac[i] is null) throw st.Error("scan uses an undefined AC Huffman table");
            blocksPerMcu += ns == 1 ? 1 : c.H * c.V;
        }
        if (blocksPerMcu > 10) throw st.Error("more than 10 blocks per MCU");

        var r = new JpegBitReader(st.Data, st.Pos, st.Data.Length);
        foreach (var c in comps) c.DcPred = 0;
        int eobrun = 0;
        var kind = !st.Progressive ? Kind.Sequential : ss == 0 ? (ah == 0 ? Kind.DcFirst : Kind.DcRefine) : (ah == 0 ? Kind.AcFirst : Kind.AcRefine);

        int unitsX, unitsY;
        if (ns == 1) { unitsX = (comps[0].Width + 7) / 8; unitsY = (comps[0].Height + 7) / 8; }
        else { unitsX = st.McusX; unitsY = st.McusY; }
        long units = (long)unitsX * unitsY;
        // Bounded time: all scans together may visit at most 200 times the frame's blocks (real files use ~10 scans).
        st.BlockVisits += units * blocksPerMcu;
        if (st.BlockVisits > 200 * st.TotalBlocks) throw st.Error("too many scans for the image size");
        int restart = st.RestartInterval, nextRst = 0;
        for (long m = 0; m < units; m++)
        {
            if (restart > 0 && m > 0 && m % restart == 0)
            {
                r.Restart(nextRst);
                nextRst = (nextRst + 1) & 7;
                foreach (var c in comps) c.DcPred = 0;
                eobrun = 0;
            }
            int ux = (int)(m % unitsX), uy = (int)(m / unitsX);
            for (int i = 0; i < ns; i++)
            {
                var c = comps[i];
                int bh = ns == 1 ? 1 : c.H, bv = ns == 1 ? 1 : c.V;
                for (int v = 0; v < bv; v++)
                    for (int h = 0; h < bh; h++)
                    {
                        int bx = ux * bh + h, by = uy * bv + v;
                        var blk = c.Coefs.AsSpan((int)(((long)by * c.BlocksPerLine + bx) * 64), 64);
                        switch (kind)
                        {
                            case Kind.Sequential: Sequential(ref r, blk, c, dc[i]!, ac[i]!, st); break;
                            case Kind.DcFirst:
                                int t = r.Decode(dc[i]!);
                                if (t > 16) throw st.Error("bad DC coefficient size");
                                c.DcPred += r.Receive(t);
                                blk[0] = (short)(c.DcPred * (1 << al));
                                break;
                            case Kind.DcRefine: if (r.GetBit() != 0) blk[0] |= (short)(1 << al); break;
                            case Kind.AcFirst: AcFirst(ref r, blk, ac[i]!, ss, se, al, ref eobrun); break;
                            default: AcRefine(ref r, blk, ac[i]!, ss, se, al, ref eobrun); break;
                        }
                    }
            }
        }
        st.Pos = r.Pos;
    }

    enum Kind { Sequential, DcFirst, DcRefine, AcFirst, AcRefine }

    /// <summary>One baseline block; the bit buffer lives in locals here, the hottest loop of the decoder.</summary>
    static void Sequential(ref JpegBitReader r, Span<short> blk, JpegComponent c, JpegHuffmanTable dc, JpegHuffmanTable ac, JpegState st)
    {
        var (bits, count) = r.State;
        if (count < 32) (bits, count) = r.Refill(bits, count); // a refill leaves at least 57 bits: a code and its value
        int t = JpegBitReader.Symbol(dc, bits, out int len);
        bits <<= len; count -= len;
        if (t > 16) throw st.Error("bad DC coefficient size");
        if (t != 0)
        {
            if (count < t) (bits, count) = r.Refill(bits, count);
            c.DcPred += JpegBitReader.Extend(bits, t);
            bits <<= t; count -= t;
        }
        blk[0] = (short)c.DcPred;
        ref short b0 = ref blk[63]; // bounds proven once: every index below is at most 63
        b0 = ref Unsafe.Subtract(ref b0, 63);
        ref int zz = ref MemoryMarshal.GetArrayDataReference(ZigZag);
        for (int k = 1; k < 64;)
        {
            if (count < 32) (bits, count) = r.Refill(bits, count);
            int rs = JpegBitReader.Symbol(ac, bits, out len);
            bits <<= len; count -= len;
            int run = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += run; // k <= 63 + 15 < ZigZag.Length, and ZigZag entries are <= 63
                Unsafe.Add(ref b0, Unsafe.Add(ref zz, k)) = (short)JpegBitReader.Extend(bits, s);
                bits <<= s; count -= s;
                k++;
            }
            else
            {
                if (run != 15) break;
                k += 16;
            }
        }
        r.State = (bits, count);
    }

    static void AcFirst(ref JpegBitReader r, Span<short> blk, JpegHuffmanTable ac, int ss, int se, int al, ref int eobrun)
    {
        if (eobrun > 0) { eobrun--; return; }
        for (int k = ss; k <= se;)
        {
            int rs = r.Decode(ac), run = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += run;
                blk[ZigZag[Math.Min(k, 79)]] = (short)(r.Receive(s) * (1 << al));
                k++;
            }
            else if (run < 15)
            {
                eobrun = (1 << run) - 1;
                if (run > 0) eobrun += r.GetBits(run);
                break;
            }
            else k += 16;
        }
    }

    static void AcRefine(ref JpegBitReader r, Span<short> blk, JpegHuffmanTable ac, int ss, int se, int al, ref int eobrun)
    {
        int p1 = 1 << al, m1 = -1 << al;
        int k = ss;
        if (eobrun == 0)
        {
            for (; k <= se; k++)
            {
                int rs = r.Decode(ac), run = rs >> 4, s = rs & 15;
                if (s != 0) s = r.GetBit() != 0 ? p1 : m1; // s must be 1 in a refinement scan; libjpeg treats any as 1
                else if (run != 15)
                {
                    eobrun = 1 << run;
                    if (run > 0) eobrun += r.GetBits(run);
                    break;
                }
                do
                {
                    ref short coef = ref blk[ZigZag[k]];
                    if (coef != 0)
                    {
                        if (r.GetBit() != 0 && (coef & p1) == 0) coef += (short)(coef >= 0 ? p1 : m1);
                    }
                    else if (--run < 0) break;
                    k++;
                } while (k <= se);
                if (s != 0) blk[ZigZag[Math.Min(k, 79)]] = (short)s;
            }
        }
        if (eobrun > 0)
        {
            for (; k <= se; k++)
            {
                ref short coef = ref blk[ZigZag[k]];
                if (coef != 0 && r.GetBit() != 0 && (coef & p1) == 0) coef += (short)(coef >= 0 ? p1 : m1);
            }
            eobrun--;
        }
    }
}
