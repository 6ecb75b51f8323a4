using System.Buffers.Binary;
using System.IO.Compression;

namespace VitSharp.Data.Codecs;

/// <summary>
/// PNG (ISO 15948): every colour type and bit depth, PLTE, tRNS, Adam7. Output: 8-bit samples (gray depths below 8 are
/// scaled to 0–255 like libpng's expand) or 16-bit samples for depth 16; tRNS adds an alpha channel. Critical-chunk CRCs
/// are checked; inflating stops at the byte count the header implies, so a zip bomb costs no more than a valid image.
/// </summary>
public sealed class PngDecoder : IImageDecoder
{
    static ReadOnlySpan<byte> Signature => [137, 80, 78, 71, 13, 10, 26, 10];
    public string Format => "png";
    public bool Sniff(ReadOnlySpan<byte> h) => h.Length >= 8 && h[..8].SequenceEqual(Signature);

    struct Header { public int Width, Height, Depth, ColorType, Interlace; }

    public Image Decode(ReadOnlySpan<byte> data, string name, DecodeOptions options)
    {
        if (!Sniff(data)) throw new ImageFormatException(name, "not a PNG (bad signature)");
        Header hd = default;
        bool seenHeader = false, seenIdat = false, seenEnd = false, idatEnded = false;
        byte[]? palette = null; // RGBA entries
        int paletteCount = 0;
        byte[]? trns = null;
        var idat = new MemoryStream();
        int pos = 8;
        while (!seenEnd)
        {
            if (pos + 12 > data.Length) throw new ImageFormatException(name, "truncated (no IEND chunk)");
            uint len = BinaryPrimitives.ReadUInt32BigEndian(data[pos..]);
            if (len > int.MaxValue || pos + 12 + (long)len > data.Length)
                throw new ImageFormatException(name, $"truncated chunk (declares {len} bytes at offset {pos})");
            var type = data.Slice(pos + 4, 4);
            var body = data.Slice(pos + 8, (int)len);
            string t = System.Text.Encoding.ASCII.GetString(type);
            bool critical = (type[0] & 0x20) == 0;
            if (critical)
            {
                uint crc = BinaryPrimitives.ReadUInt32BigEndian(data[(pos + 8 + (int)len)..]);
                if (Crc32.Compute(data.Slice(pos + 4, 4 + (int)len)) != crc) throw new ImageFormatException(name, $"CRC error in {t} chunk");
            }
            if (!seenHeader && t != "IHDR") throw new ImageFormatException(name, $"first chunk is {Printable(t)}, not IHDR");
            if (t != "IDAT" && seenIdat) idatEnded = true;
            switch (t)
            {
                case "IHDR":
                    if (seenHeader) throw new ImageFormatException(name, "second IHDR chunk");
                    if (len != 13) throw new ImageFormatException(name, "IHDR chunk is not 13 bytes");
                    hd = ParseHeader(body, name, options);
                    seenHeader = true;
                    break;
                case "PLTE":
                    if (len % 3 != 0 || len == 0 || len > 768) throw new ImageFormatException(name, $"PLTE of {len} bytes");
                    if (seenIdat) throw new ImageFormatException(name, "PLTE after IDAT");
                    paletteCount = (int)len / 3;
                    palette = new byte[256 * 4];
                    for (int i = 0; i < 256; i++) palette[i * 4 + 3] = 255;
                    for (int i = 0; i < paletteCount; i++)
                        for (int c = 0; c < 3; c++) palette[i * 4 + c] = body[i * 3 + c];
                    break;
                case "tRNS":
                    if (seenIdat) throw new ImageFormatException(name, "tRNS after IDAT");
                    trns = body.ToArray();
                    break;
                case "IDAT":
                    if (idatEnded) throw new ImageFormatException(name, "IDAT chunks are not consecutive");
                    seenIdat = true;
                    idat.Write(body);
                    break;
                case "IEND":
                    seenEnd = true;
                    break;
                default:
                    if (critical) throw new ImageFormatException(name, $"unknown critical chunk {Printable(t)}");
                    break;
            }
            pos += 12 + (int)len;
        }
        if (!seenIdat) throw new ImageFormatException(name, "no IDAT chunk");
        if (hd.ColorType == 3 && palette is null) throw new ImageFormatException(name, "palette image without PLTE");

        int channelsIn = hd.ColorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        int bitsPerPixel = channelsIn * hd.Depth;
        long expected = 0;
        foreach (var (w, h) in PassSizes(hd))
            if (w > 0 && h > 0) expected += h * (1 + ((long)w * bitsPerPixel + 7) / 8);
        var raw = Inflate(idat, expected, name);

        // Unfilter every pass into its own scanlines, then scatter to the full image as 16-bit-or-8-bit samples.
        bool trnsApplies = trns is not null && hd.ColorType is 0 or 2 or 3;
        if (trns is not null && hd.ColorType == 3 && trns.Length > paletteCount)
            throw new ImageFormatException(name, "tRNS has more entries than PLTE");
        if (trns is not null && hd.ColorType == 0 && trns.Length < 2) throw new ImageFormatException(name, "short tRNS chunk");
        if (trns is not null && hd.ColorType == 2 && trns.Length < 6) throw new ImageFormatException(name, "short tRNS chunk");
        if (trns is not null && hd.ColorType == 3) for (int i = 0; i < trns.Length; i++) palette![i * 4 + 3] = trns[i];
        int outC = hd.ColorType switch
        {
            0 => trnsApplies ? 2 : 1,
            2 => trnsApplies ? 4 : 3,
            3 => trnsApplies ? 4 : 3,
            4 => 2,
            _ => 4,
        };
        bool sixteen = hd.Depth == 16;
        var out8 = sixteen ? null : new byte[(long)hd.Width * hd.Height * outC];
        var out16 = sixteen ? new ushort[(long)hd.Width * hd.Height * outC] : null;
        int rawPos = 0, pass = 0;
        int bpp = Math.Max(1, bitsPerPixel / 8);
        foreach (var (pw, ph) in PassSizes(hd))
        {
            var (x0, y0, dx, dy) = hd.Interlace == 1 ? Adam7[pass] : (0, 0, 1, 1);
            pass++;
            if (pw == 0 || ph == 0) continue;
            int rowBytes = (int)(((long)pw * bitsPerPixel + 7) / 8);
            var prev = new byte[rowBytes];
            var cur = new byte[rowBytes];
            for (int r = 0; r < ph; r++)
            {
                byte filter = raw[rawPos];
                raw.AsSpan(rawPos + 1, rowBytes).CopyTo(cur);
                rawPos += 1 + rowBytes;
                Unfilter(filter, cur, prev, bpp, name);
                int y = y0 + r * dy;
                for (int i = 0; i < pw; i++)
                {
                    long o = ((long)y * hd.Width + x0 + (long)i * dx) * outC;
                    WritePixel(hd, cur, i, palette, trnsApplies ? trns : null, out8, out16, o);
                }
                (prev, cur) = (cur, prev);
            }
        }
        return sixteen ? new Image(hd.Width, hd.Height, outC, out16!) : new Image(hd.Width, hd.Height, outC, out8!);
    }

    static string Printable(string t) => new(t.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());

    static Header ParseHeader(ReadOnlySpan<byte> b, string name, DecodeOptions options)
    {
        var hd = new Header
        {
            Width = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(b), int.MaxValue),
            Height = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(b[4..]), int.MaxValue),
            Depth = b[8], ColorType = b[9], Interlace = b[12],
        };
        options.CheckSize(name, hd.Width, hd.Height);
        bool ok = hd.ColorType switch
        {
            0 => hd.Depth is 1 or 2 or 4 or 8 or 16,
            3 => hd.Depth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => hd.Depth is 8 or 16,
            _ => false,
        };
        if (!ok) throw new ImageFormatException(name, $"invalid colour type {hd.ColorType} with bit depth {hd.Depth}");
        if (b[10] != 0 || b[11] != 0) throw new ImageFormatException(name, "unknown compression or filter method");
        if (hd.Interlace > 1) throw new ImageFormatException(name, $"unknown interlace method {hd.Interlace}");
        return hd;
    }

    static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    static IEnumerable<(int W, int H)> PassSizes(Header hd)
    {
        if (hd.Interlace == 0) { yield return (hd.Width, hd.Height); yield break; }
        foreach (var (x0, y0, dx, dy) in Adam7)
            yield return ((hd.Width - x0 + dx - 1) / dx, (hd.Height - y0 + dy - 1) / dy);
    }

    static byte[] Inflate(MemoryStream idat, long expected, string name)
    {
        if (expected > int.MaxValue - 64) throw new ImageFormatException(name, "image data too large");
        // Deflate expands at most ~1032:1, so less compressed data than that cannot hold the image: refuse before
        // allocating (a 100-byte file must not make us reserve gigabytes).
        if (expected > idat.Length * 1040 + 4096)
            throw new ImageFormatException(name, $"{idat.Length} bytes of compressed data cannot hold {expected} bytes of image data (truncated)");
        var raw = new byte[expected];
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int got = 0;
            while (got < raw.Length)
            {
                int n = z.Read(raw, got, raw.Length - got);
                if (n == 0) throw new ImageFormatException(name, $"image data ends early ({got} of {expected} bytes)");
                got += n;
            }
        }
        catch (InvalidDataException e) { throw new ImageFormatException(name, "corrupt zlib data in IDAT", e); }
        return raw;
    }

    static void Unfilter(byte filter, Span<byte> cur, ReadOnlySpan<byte> prev, int bpp, string name)
    {
        int n = cur.Length;
        switch (filter)
        {
            case 0: break;
            case 1: for (int i = bpp; i < n; i++) cur[i] += cur[i - bpp]; break;
            case 2: for (int i = 0; i < n; i++) cur[i] += prev[i]; break;
            case 3:
                for (int i = 0; i < bpp; i++) cur[i] += (byte)(prev[i] >> 1);
                for (int i = bpp; i < n; i++) cur[i] += (byte)((cur[i - bpp] + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < bpp; i++) cur[i] += prev[i];
                for (int i = bpp; i < n; i++) cur[i] += Paeth(cur[i - bpp], prev[i], prev[i - bpp]);
                break;
            default: throw new ImageFormatException(name, $"unknown filter type {filter}");
        }
    }

    static byte Paeth(byte a, byte b, byte c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    static void WritePixel(Header hd, byte[] row, int i, byte[]? palette, byte[]? trns, byte[]? o8, ushort[]? o16, long o)
    {
        switch (hd.ColorType)
        {
            case 0 when hd.Depth == 16:
            {
                ushort g = (ushort)(row[2 * i] << 8 | row[2 * i + 1]);
                o16![o] = g;
                if (trns is not null) o16[o + 1] = g == (trns[0] << 8 | trns[1]) ? (ushort)0 : ushort.MaxValue;
                break;
            }
            case 0:
            {
                int v = Sample(row, i, hd.Depth);
                o8![o] = (byte)(v * (255 / ((1 << hd.Depth) - 1)));
                if (trns is not null) o8[o + 1] = v == ((trns[0] << 8 | trns[1]) & 0xFFFF) ? (byte)0 : (byte)255;
                break;
            }
            case 3:
            {
                int v = Sample(row, i, hd.Depth);
                // Out-of-range indices: libpng rejects them; map to black rather than fail (PIL does too).
                o8![o] = palette![v * 4]; o8[o + 1] = palette[v * 4 + 1]; o8[o + 2] = palette[v * 4 + 2];
                if (trns is not null) o8[o + 3] = palette[v * 4 + 3];
                break;
            }
            case 2 when hd.Depth == 16:
            {
                bool transparent = trns is not null;
                for (int c = 0; c < 3; c++)
                {
                    ushort s = (ushort)(row[6 * i + 2 * c] << 8 | row[6 * i + 2 * c + 1]);
                    o16![o + c] = s;
                    if (trns is not null && s != (trns[2 * c] << 8 | trns[2 * c + 1])) transparent = false;
                }
                if (trns is not null) o16![o + 3] = transparent ? (ushort)0 : ushort.MaxValue;
                break;
            }
            case 2:
            {
                bool transparent = trns is not null;
                for (int c = 0; c < 3; c++)
                {
                    byte s = row[3 * i + c];
                    o8![o + c] = s;
                    if (trns is not null && s != (trns[2 * c] << 8 | trns[2 * c + 1])) transparent = false;
                }
                if (trns is not null) o8![o + 3] = transparent ? (byte)0 : (byte)255;
                break;
            }
            default: // 4 and 6: samples as stored
            {
                int c = hd.ColorType == 4 ? 2 : 4;
                if (hd.Depth == 16) for (int k = 0; k < c; k++) o16![o + k] = (ushort)(row[2 * (c * i + k)] << 8 | row[2 * (c * i + k) + 1]);
                else for (int k = 0; k < c; k++) o8![o + k] = row[c * i + k];
                break;
            }
        }
    }

    static int Sample(byte[] row, int i, int depth) => depth switch
    {
        8 => row[i],
        _ => (row[i * depth >> 3] >> (8 - depth - (i * depth & 7))) & ((1 << depth) - 1),
    };
}
