using System.Buffers.Binary;
using System.Numerics;

namespace VitSharp.Data.Codecs;

/// <summary>
/// Windows BMP, uncompressed: 24-bit, 32-bit (BI_RGB, or BI_BITFIELDS with 8-bit masks; alpha kept when a mask says so),
/// 16-bit 5-5-5 / bitfields, and 1/4/8-bit palettes; bottom-up or top-down. RLE compression is refused with a clear error.
/// </summary>
public sealed class BmpDecoder : IImageDecoder
{
    public string Format => "bmp";
    public bool Sniff(ReadOnlySpan<byte> h) => h.Length >= 2 && h[0] == 'B' && h[1] == 'M';

    public Image Decode(ReadOnlySpan<byte> d, string name, DecodeOptions options)
    {
        if (d.Length < 26 || !Sniff(d)) throw new ImageFormatException(name, "not a BMP or truncated header");
        uint dataOffset = BinaryPrimitives.ReadUInt32LittleEndian(d[10..]);
        int headerSize = BinaryPrimitives.ReadInt32LittleEndian(d[14..]);
        if (headerSize < 40 || 14 + (long)headerSize > d.Length)
            throw new ImageFormatException(name, headerSize == 12 ? "OS/2 BMP headers are not supported" : "truncated or invalid BMP info header");
        int width = BinaryPrimitives.ReadInt32LittleEndian(d[18..]);
        int rawHeight = BinaryPrimitives.ReadInt32LittleEndian(d[22..]);
        int bits = BinaryPrimitives.ReadUInt16LittleEndian(d[28..]);
        uint compression = BinaryPrimitives.ReadUInt32LittleEndian(d[30..]);
        uint colorsUsed = BinaryPrimitives.ReadUInt32LittleEndian(d[46..]);
        if (rawHeight == int.MinValue) throw new ImageFormatException(name, "invalid height");
        bool topDown = rawHeight < 0;
        int height = Math.Abs(rawHeight);
        options.CheckSize(name, width, height);
        if (compression is 1 or 2) throw new ImageFormatException(name, "RLE-compressed BMP is not supported");
        if (compression is not (0 or 3 or 6)) throw new ImageFormatException(name, $"BMP compression {compression} is not supported");
        if (bits is not (1 or 4 or 8 or 16 or 24 or 32)) throw new ImageFormatException(name, $"{bits} bits per pixel is not supported");

        uint[] masks = bits == 16 ? [0x7C00, 0x03E0, 0x001F, 0] : [0xFF0000, 0xFF00, 0xFF, 0];
        if (compression is 3 or 6)
        {
            if (bits is not (16 or 32)) throw new ImageFormatException(name, "bitfields need 16 or 32 bits per pixel");
            int mpos = headerSize >= 52 ? 14 + 40 : 14 + headerSize; // masks are inside V2+ headers, else follow the header
            int nMasks = compression == 6 || headerSize >= 56 ? 4 : 3;
            if (mpos + 4 * nMasks > d.Length) throw new ImageFormatException(name, "truncated bitfield masks");
            for (int i = 0; i < nMasks; i++) masks[i] = BinaryPrimitives.ReadUInt32LittleEndian(d[(mpos + 4 * i)..]);
        }
        else if (bits == 32 && headerSize >= 56) masks[3] = 0; // BI_RGB 32-bit: the fourth byte is padding

        byte[]? palette = null;
        if (bits <= 8)
        {
            long n = colorsUsed == 0 ? 1L << bits : colorsUsed;
            if (n > 1 << bits) throw new ImageFormatException(name, $"palette of {n} colours for {bits}-bit pixels");
            long ppos = 14 + headerSize;
            if (ppos + 4 * n > d.Length) throw new ImageFormatException(name, "truncated palette");
            palette = new byte[3 << bits]; // unused entries stay black
            for (int i = 0; i < n; i++)
            {
                palette[3 * i] = d[(int)ppos + 4 * i + 2];
                palette[3 * i + 1] = d[(int)ppos + 4 * i + 1];
                palette[3 * i + 2] = d[(int)ppos + 4 * i];
            }
        }
        long stride = ((long)width * bits + 31) / 32 * 4;
        if (dataOffset + stride * height > d.Length) throw new ImageFormatException(name, "truncated pixel data");

        bool alpha = masks[3] != 0;
        int c = alpha ? 4 : 3;
        var o = new byte[(long)width * height * c];
        for (int y = 0; y < height; y++)
        {
            var row = d.Slice((int)(dataOffset + stride * (topDown ? y : height - 1 - y)), (int)stride);
            for (int x = 0; x < width; x++)
            {
                long p = ((long)y * width + x) * c;
                if (bits <= 8)
                {
                    int idx = (row[x * bits / 8] >> (8 - bits - (x * bits % 8))) & ((1 << bits) - 1);
                    o[p] = palette![3 * idx]; o[p + 1] = palette[3 * idx + 1]; o[p + 2] = palette[3 * idx + 2];
                }
                else if (bits == 24 && compression == 0)
                {
                    o[p] = row[3 * x + 2]; o[p + 1] = row[3 * x + 1]; o[p + 2] = row[3 * x];
                }
                else
                {
                    uint v = bits == 16 ? BinaryPrimitives.ReadUInt16LittleEndian(row[(2 * x)..]) : BinaryPrimitives.ReadUInt32LittleEndian(row[(4 * x)..]);
                    for (int k = 0; k < c; k++) o[p + k] = Field(v, masks[k]);
                }
            }
        }
        return new Image(width, height, c, o);
    }

    /// <summary>The masked field scaled to 8 bits (a 5-bit field v becomes round(v * 255 / 31)).</summary>
    static byte Field(uint v, uint mask)
    {
        if (mask == 0) return 0;
        int shift = BitOperations.TrailingZeroCount(mask);
        uint m = mask >> shift;
        if ((m & (m + 1)) != 0) return 0; // not a contiguous mask
        uint f = (v & mask) >> shift;
        return (byte)((f * 255 + m / 2) / m);
    }
}
