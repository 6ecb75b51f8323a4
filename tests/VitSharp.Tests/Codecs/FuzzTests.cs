using System.Buffers.Binary;
using System.Diagnostics;
using VitSharp.Data.Codecs;
using Xunit.Abstractions;

namespace VitSharp.Tests.Codecs;

/// <summary>
/// Seeded random mutations (bit flips, byte overwrites, truncations, insertions, deletions, duplicated spans; for PNG
/// also with chunk CRCs repaired so the mutation reaches the inflater and filters) of small real files. Every outcome
/// must be an image or an <see cref="ImageFormatException"/>: no other exception type, and no hang.
/// </summary>
public class FuzzTests(ITestOutputHelper log)
{
    static readonly DecodeOptions Opts = new() { MaxPixels = 1 << 22 };

    [Theory]
    [InlineData("jpg", 4000, 1)]
    [InlineData("png", 3000, 2)]
    [InlineData("bmp", 600, 3)]
    [InlineData("ppm", 600, 4)]
    public async Task MutatedFilesFailOnlyWithImageFormatException(string ext, int cases, int seed)
    {
        var seeds = Directory.GetFiles(Path.Combine(TestEnv.DataDir, "fuzz"), "*." + ext).Order().Select(File.ReadAllBytes).ToArray();
        Assert.NotEmpty(seeds);
        foreach (var s in seeds) ImageCodecs.Decode(s, "seed", Opts); // the seeds themselves are valid
        var rng = new Random(seed);
        int decoded = 0, rejected = 0;
        var sw = Stopwatch.StartNew();
        var work = Task.Run(() =>
        {
            for (int i = 0; i < cases; i++)
            {
                var src = seeds[rng.Next(seeds.Length)];
                // A third of PNG cases mutate the inflated scanlines or IHDR fields instead, then re-deflate and fix CRCs,
                // so that the mutations reach the filters, bit depths and interlacing rather than stopping at zlib.
                var data = ext == "png" && rng.Next(3) == 0 ? MutateInsidePng(src, rng) : Mutate(src, rng);
                if (ext == "png" && rng.Next(2) == 0) RepairPngCrcs(data);
                var caseSw = Stopwatch.StartNew();
                try { ImageCodecs.Decode(data, $"fuzz case {i}", Opts); decoded++; }
                catch (ImageFormatException) { rejected++; }
                catch (Exception e)
                {
                    File.WriteAllBytes(Path.Combine(Path.GetTempPath(), $"vitsharp-fuzz-{ext}-{i}.{ext}"), data);
                    throw new Xunit.Sdk.XunitException($"case {i} (seed {seed}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
                if (caseSw.ElapsedMilliseconds > 2000) throw new Xunit.Sdk.XunitException($"case {i} took {caseSw.ElapsedMilliseconds} ms");
            }
        });
        Assert.True(await Task.WhenAny(work, Task.Delay(TimeSpan.FromSeconds(60))) == work, "fuzzing did not finish in 60 s (a hang?)");
        await work;
        log.WriteLine($"{ext}: {cases} cases in {sw.ElapsedMilliseconds} ms: {decoded} decoded, {rejected} rejected");
    }

    static byte[] Mutate(byte[] src, Random rng)
    {
        var d = new List<byte>(src);
        int n = 1 + rng.Next(4);
        for (int m = 0; m < n && d.Count > 0; m++)
        {
            int p = rng.Next(d.Count);
            switch (rng.Next(7))
            {
                case 0: d[p] ^= (byte)(1 << rng.Next(8)); break;
                case 1: d[p] = (byte)rng.Next(256); break;
                case 2: d.RemoveRange(p, d.Count - p); break;                         // truncate
                case 3: for (int k = rng.Next(1, 9); k > 0; k--) d.Insert(p, (byte)rng.Next(256)); break;
                case 4: d.RemoveRange(p, Math.Min(d.Count - p, rng.Next(1, 17))); break;
                case 5: d[p] = rng.Next(2) == 0 ? (byte)0xFF : (byte)0x00; break;    // marker-ish / zero bytes
                default:
                    int len = Math.Min(d.Count - p, rng.Next(1, 64));
                    d.InsertRange(rng.Next(d.Count), d.GetRange(p, len)); break;    // duplicate a span
            }
        }
        return d.ToArray();
    }

    static byte[] MutateInsidePng(byte[] png, Random rng)
    {
        var chunks = new List<(string Type, byte[] Body)>();
        var idat = new MemoryStream();
        for (int pos = 8; pos + 12 <= png.Length;)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(png, pos + 4, 4);
            var body = png.AsSpan(pos + 8, len).ToArray();
            if (type == "IDAT") { if (idat.Length == 0) chunks.Add((type, [])); idat.Write(body); }
            else chunks.Add((type, body));
            pos += 12 + len;
        }
        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(idat, System.IO.Compression.CompressionMode.Decompress)) z.CopyTo(inflated);
        var raw = inflated.ToArray();
        var ihdr = chunks[0].Body;
        if (rng.Next(2) == 0) raw = Mutate(raw, rng);
        else ihdr[8 + rng.Next(5)] = (byte)(rng.Next(3) == 0 ? rng.Next(256) : new[] { 1, 2, 4, 8, 16, 0, 2, 3, 4, 6 }[rng.Next(10)]);
        using var deflated = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(deflated, System.IO.Compression.CompressionLevel.Fastest, true)) z.Write(raw);
        using var o = new MemoryStream();
        o.Write(png, 0, 8);
        foreach (var (type, body0) in chunks)
        {
            var body = type == "IDAT" ? deflated.ToArray() : body0;
            var c = new byte[12 + body.Length];
            BinaryPrimitives.WriteInt32BigEndian(c, body.Length);
            System.Text.Encoding.ASCII.GetBytes(type, c.AsSpan(4));
            body.CopyTo(c, 8);
            BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(8 + body.Length), Crc32.Compute(c.AsSpan(4, 4 + body.Length)));
            o.Write(c);
        }
        return o.ToArray();
    }

    static void RepairPngCrcs(byte[] png)
    {
        for (int pos = 8; pos + 12 <= png.Length;)
        {
            uint len = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (len > png.Length - pos - 12) return;
            uint crc = Crc32.Compute(png.AsSpan(pos + 4, 4 + (int)len));
            BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(pos + 8 + (int)len), crc);
            pos += 12 + (int)len;
        }
    }

    [Fact]
    public void HostileHeadersAreRejectedBeforeAllocating()
    {
        // PNG declaring 100000 x 100000 pixels: refused by the pixel cap, named in the message.
        var png = File.ReadAllBytes(Path.Combine(TestEnv.DataDir, "fuzz", "rgb8.png"));
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 100000);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 100000);
        RepairPngCrcs(png);
        var e = Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode(png, "huge.png"));
        Assert.Contains("huge.png", e.Message);
        Assert.Contains("exceeds", e.Message);

        // A zip bomb: a valid 16x16 header whose IDAT inflates to megabytes; only the bytes the header implies are read.
        var bomb = ZipBombPng(16, 16, 50_000_000);
        var img = ImageCodecs.Decode(bomb, "bomb.png");
        Assert.Equal(16, img.Width);

        // JPEG: SOS before SOF, bad Huffman table, 65535 x 65535 frame.
        var jpg = File.ReadAllBytes(Path.Combine(TestEnv.DataDir, "fuzz", "baseline420_rst.jpg"));
        Assert.Contains("SOS before SOF", Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode(
            [0xFF, 0xD8, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0xFF, 0xD9], "order.jpg")).Message);
        int sof = IndexOf(jpg, 0xFF, 0xC0);
        var big = (byte[])jpg.Clone();
        big[sof + 5] = 0xFF; big[sof + 6] = 0xFF; big[sof + 7] = 0xFF; big[sof + 8] = 0xFF;
        Assert.Contains("exceeds", Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode(big, "big.jpg")).Message);
        var tall = (byte[])jpg.Clone(); // 16000 x 16000 fits MaxPixels but not a 1 KB file
        tall[sof + 5] = 0x3E; tall[sof + 6] = 0x80; tall[sof + 7] = 0x3E; tall[sof + 8] = 0x80;
        Assert.Contains("too small", Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode(tall, "tall.jpg")).Message);
        var tallPng = File.ReadAllBytes(Path.Combine(TestEnv.DataDir, "fuzz", "rgb8.png"));
        BinaryPrimitives.WriteInt32BigEndian(tallPng.AsSpan(16), 16000);
        BinaryPrimitives.WriteInt32BigEndian(tallPng.AsSpan(20), 16000);
        RepairPngCrcs(tallPng);
        Assert.Contains("cannot hold", Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode(tallPng, "tall.png")).Message);
        Assert.Contains("truncated", Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode("P3 16000 16000 255 1 2 3"u8, "tall.ppm")).Message);
        int dht = IndexOf(jpg, 0xFF, 0xC4);
        var bad = (byte[])jpg.Clone();
        for (int i = 0; i < 16; i++) bad[dht + 5 + i] = 2; // two codes of every length: overflows at length 1
        Assert.Contains("Huffman", Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode(bad, "huff.jpg")).Message);
        Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode(jpg.AsSpan(0, 200), "truncated.jpg"));
        Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode([], "empty"));
        Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode("GIF89a..........."u8, "gif"));
        log.WriteLine("hostile headers rejected");
    }

    static int IndexOf(byte[] d, byte a, byte b)
    {
        for (int i = 0; i + 1 < d.Length; i++) if (d[i] == a && d[i + 1] == b) return i;
        throw new InvalidOperationException("marker not found");
    }

    static byte[] ZipBombPng(int w, int h, int inflatedBytes)
    {
        using var ms = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(ms, System.IO.Compression.CompressionLevel.Optimal, true))
            z.Write(new byte[inflatedBytes]);
        var idat = ms.ToArray();
        var img = new VitSharp.Data.Image(w, h, 1, new byte[w * h]);
        using var png = new MemoryStream();
        new PngEncoder().Encode(img, png);
        var small = png.ToArray();
        // Replace the IDAT of a valid gray PNG of the same size with the bomb's.
        int p = 8; var outp = new MemoryStream();
        outp.Write(small, 0, 8);
        while (p < small.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(small.AsSpan(p));
            string type = System.Text.Encoding.ASCII.GetString(small, p + 4, 4);
            var body = type == "IDAT" ? idat : small.AsSpan(p + 8, len).ToArray();
            var chunk = new byte[12 + body.Length];
            BinaryPrimitives.WriteInt32BigEndian(chunk, body.Length);
            System.Text.Encoding.ASCII.GetBytes(type, chunk.AsSpan(4));
            body.CopyTo(chunk, 8);
            BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + body.Length), Crc32.Compute(chunk.AsSpan(4, 4 + body.Length)));
            outp.Write(chunk);
            p += 12 + len;
        }
        return outp.ToArray();
    }
}
