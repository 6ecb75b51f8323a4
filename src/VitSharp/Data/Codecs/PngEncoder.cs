using System.Buffers.Binary;
using System.IO.Compression;

namespace VitSharp.Data.Codecs;

/// <summary>PNG writer: gray, gray+alpha, RGB, RGBA at 8 or 16 bits, no interlace; per row the filter with the smallest
/// sum of absolute values (libpng's heuristic), zlib at <see cref="Level"/>.</summary>
public sealed class PngEncoder : IImageEncoder
{
    public string Format => "png";
    public CompressionLevel Level { get; init; } = CompressionLevel.Optimal;

    public void Encode(Image image, Stream output)
    {
        output.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), image.Height);
        ihdr[8] = (byte)image.BitDepth;
        ihdr[9] = image.Channels switch { 1 => 0, 2 => 4, 3 => 2, _ => 6 };
        WriteChunk(output, "IHDR", ihdr);

        int bpp = image.Channels * image.BitDepth / 8, rowBytes = image.Width * bpp;
        var raw = Raw(image);
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, Level, leaveOpen: true))
        {
            var prev = new byte[rowBytes];
            var cand = new byte[5][];
            for (int f = 0; f < 5; f++) cand[f] = new byte[rowBytes + 1];
            for (int y = 0; y < image.Height; y++)
            {
                var cur = raw.AsSpan(y * rowBytes, rowBytes);
                int best = 0; long bestSum = long.MaxValue;
                for (int f = 0; f < 5; f++)
                {
                    var o = cand[f];
                    o[0] = (byte)f;
                    long sum = 0;
                    for (int i = 0; i < rowBytes; i++)
                    {
                        int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                        int pred = f switch { 0 => 0, 1 => a, 2 => b, 3 => (a + b) >> 1, _ => Paeth(a, b, c) };
                        byte v = (byte)(cur[i] - pred);
                        o[i + 1] = v;
                        sum += v < 128 ? v : 256 - v;
                    }
                    if (sum < bestSum) { bestSum = sum; best = f; }
                }
                z.Write(cand[best]);
                cur.CopyTo(prev);
            }
        }
        WriteChunk(output, "IDAT", ms.ToArray());
        WriteChunk(output, "IEND", []);
    }

    static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    static byte[] Raw(Image image)
    {
        if (image.Pixels is not null) return image.Pixels;
        var s = image.Pixels16!;
        var b = new byte[s.Length * 2];
        for (int i = 0; i < s.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2 * i), s[i]);
        return b;
    }

    static void WriteChunk(Stream o, string type, byte[] body)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, body.Length);
        System.Text.Encoding.ASCII.GetBytes(type, head[4..]);
        o.Write(head);
        o.Write(body);
        uint crc = Crc32.Compute(body, Crc32.Compute(head[4..]));
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc);
        o.Write(tail);
    }
}
