using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VitSharp.Data.Codecs;

/// <summary>
/// One Huffman table (ITU T.81 Annex C): a 9-bit lookahead table for short codes and per-length max codes for the rest.
/// Built from the DHT counts and symbols; an over-full code set is rejected, as libjpeg does ("bogus Huffman table").
/// </summary>
internal sealed class JpegHuffmanTable
{
    public const int LookBits = 9;
    /// <summary>(length &lt;&lt; 8 | symbol) for codes of at most <see cref="LookBits"/> bits, 0 when longer.</summary>
    public readonly ushort[] Lookup = new ushort[1 << LookBits];
    public readonly int[] MaxCode = new int[18]; // largest code of each length, -1 if none; [17] sentinel
    public readonly int[] ValOffset = new int[17];
    public readonly byte[] Symbols;

    public JpegHuffmanTable(ReadOnlySpan<byte> counts16, ReadOnlySpan<byte> symbols, string name)
    {
        Symbols = symbols.ToArray();
        int code = 0, k = 0;
        for (int len = 1; len <= 16; len++)
        {
            int n = counts16[len - 1];
            ValOffset[len] = k - code;
            if (n > 0)
            {
                for (int i = 0; i < n; i++, k++, code++)
                {
                    if (code >= 1 << len) throw new ImageFormatException(name, "bogus Huffman table (code lengths overflow)");
                    if (len <= LookBits)
                    {
                        int shift = LookBits - len;
                        for (int j = 0; j < 1 << shift; j++) Lookup[(code << shift) | j] = (ushort)(len << 8 | Symbols[k]);
                    }
                }
                MaxCode[len] = code - 1;
            }
            else MaxCode[len] = -1;
            code <<= 1;
        }
        MaxCode[17] = int.MaxValue;
    }
}

/// <summary>
/// Reads entropy-coded bits: removes 0xFF00 stuffing; at a marker or the end of data it supplies zero bits, as libjpeg
/// does, so a truncated file decodes to gray instead of failing (the caller notices via <see cref="HitMarker"/>).
/// </summary>
internal struct JpegBitReader
{
    readonly byte[] _data;
    readonly int _end;
    public int Pos;
    ulong _bits;   // left-aligned
    int _count;

    /// <summary>Hot loops keep the bit buffer in locals (registers) and hand it here only to refill it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public (ulong Bits, int Count) Refill(ulong bits, int count)
    {
        _bits = bits; _count = count;
        Fill();
        return (_bits, _count);
    }

    public (ulong Bits, int Count) State { get => (_bits, _count); set => (_bits, _count) = value; }

    /// <summary>Symbol of the code at the top of <paramref name="bits"/> and its length; needs at least 16 valid bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Symbol(JpegHuffmanTable t, ulong bits, out int length)
    {
        // The index is below 2^LookBits by construction, so the bounds check can go.
        int e = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(t.Lookup), (nint)(bits >> (64 - JpegHuffmanTable.LookBits)));
        if (e != 0) { length = e >> 8; return e & 0xFF; }
        return SlowSymbol(t, bits, out length);
    }

    static int SlowSymbol(JpegHuffmanTable t, ulong bits, out int length)
    {
        int l = JpegHuffmanTable.LookBits + 1;
        int code = (int)(bits >> (64 - l));
        while (l <= 16 && code > t.MaxCode[l]) { l++; code = (int)(bits >> (64 - l)); }
        if (l > 16) { length = 16; return 0; } // corrupt data: libjpeg warns and returns 0
        length = l;
        int idx = code + t.ValOffset[l];
        return (uint)idx < (uint)t.Symbols.Length ? t.Symbols[idx] : 0;
    }

    /// <summary>The top n bits (1..16) as a signed magnitude-category value (T.81 EXTEND).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Extend(ulong bits, int n)
    {
        int v = (int)(bits >> (64 - n));
        return v + (((v - (1 << (n - 1))) >> 31) & ((-1 << n) + 1)); // branch-free: the sign is unpredictable
    }
    public bool HitMarker;

    public JpegBitReader(byte[] data, int pos, int end) { _data = data; Pos = pos; _end = end; _bits = 0; _count = 0; HitMarker = false; }

    [MethodImpl(MethodImplOptions.NoInlining)]
    void Fill()
    {
        // Fast path: the next 8 bytes hold no 0xFF (so no stuffing and no marker): take whole bytes at once.
        if (!HitMarker && Pos + 8 <= _end)
        {
            ulong v = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(_data.AsSpan(Pos));
            ulong inv = ~v;
            if (((inv - 0x0101010101010101UL) & ~inv & 0x8080808080808080UL) == 0)
            {
                int take = (63 - _count) >> 3;
                _bits |= (v >> _count) & ~(ulong.MaxValue >> (_count + 8 * take)); // count + 8·take <= 63
                Pos += take;
                _count += 8 * take;
                return;
            }
        }
        while (_count <= 56)
        {
            uint b = 0;
            if (!HitMarker && Pos < _end)
            {
                b = _data[Pos];
                if (b == 0xFF)
                {
                    byte next = Pos + 1 < _end ? _data[Pos + 1] : (byte)0xD9;
                    if (next == 0) Pos += 2;
                    else { HitMarker = true; b = 0; }
                }
                else Pos++;
            }
            _bits |= (ulong)b << (56 - _count);
            _count += 8;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int GetBits(int n)
    {
        if (n == 0) return 0;
        if (_count < n) Fill();
        int v = (int)(_bits >> (64 - n));
        _bits <<= n;
        _count -= n;
        return v;
    }

    public int GetBit() => GetBits(1);

    /// <summary>Reads n bits and sign-extends them as a JPEG magnitude category value (T.81 F.2.2.1 EXTEND).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Receive(int n)
    {
        if (n == 0) return 0;
        int v = GetBits(n);
        return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Decode(JpegHuffmanTable t)
    {
        if (_count < 32) Fill(); // enough for this code and the magnitude bits that follow it
        int s = Symbol(t, _bits, out int len);
        _bits <<= len;
        _count -= len;
        return s;
    }

    /// <summary>Drops buffered bits and skips an RSTn marker if one is next (restart interval boundary).</summary>
    public bool Restart(int expectedIndex)
    {
        _bits = 0; _count = 0; HitMarker = false;
        // Skip any fill bytes, then expect FFDn.
        while (Pos + 1 < _end && _data[Pos] == 0xFF && _data[Pos + 1] == 0xFF) Pos++;
        if (Pos + 1 < _end && _data[Pos] == 0xFF && _data[Pos + 1] >= 0xD0 && _data[Pos + 1] <= 0xD7)
        {
            bool ok = _data[Pos + 1] - 0xD0 == expectedIndex;
            Pos += 2;
            return ok;
        }
        return false;
    }
}
