using System.Buffers.Binary;
using VitSharp.Data;
using VitSharp.Data.Codecs;
using Xunit.Abstractions;

namespace VitSharp.Tests.Codecs;

/// <summary>
/// Our PNG decoder against netpbm's pngtopam (libpng) on PNGs made on the fly with pnmtopng: every colour type,
/// bit depths 1–16, palettes, tRNS and alpha, Adam7. PNG decoding must be exact.
/// </summary>
public class PngParityTests(ITestOutputHelper log)
{
    static Image Source() => ImageCodecs.Decode(Path.Combine(TestEnv.DataDir, "chelsea_crop128x96.png"));
    static byte[] Pnm(Image img) { using var ms = new MemoryStream(); new PnmEncoder().Encode(img, ms); return ms.ToArray(); }

    /// <summary>(name, netpbm pipeline from a PPM of the source to a PNG).</summary>
    static readonly string[] Pipelines =
    [
        "pnmtopng", "pnmtopng -interlace",
        "pamdepth 1000 | pamdepth 65535 | pnmtopng", "pamdepth 1000 | pamdepth 65535 | pnmtopng -interlace",
        "ppmtopgm | pnmtopng", "ppmtopgm | pamdepth 15 | pnmtopng", "ppmtopgm | pamdepth 3 | pnmtopng -interlace",
        "ppmtopgm | pamdepth 1 | pnmtopng", "ppmtopgm | pamdepth 1 | pnmtopng -interlace", "ppmtopgm | pamdepth 1000 | pamdepth 65535 | pnmtopng",
        "pnmquant 200 | pnmtopng", "pnmquant 14 | pnmtopng -interlace", "pnmquant 4 | pnmtopng", "pnmquant 2 | pnmtopng",
        "pnmquant 12 | pnmtopng -transparent =rgb:00/00/00", "ALPHA pnmtopng -alpha=ALPHAFILE", "ALPHA pnmtopng -interlace -alpha=ALPHAFILE",
        "ALPHA pamdepth 1000 | pamdepth 65535 | pnmtopng -alpha=ALPHAFILE16", "ALPHA ppmtopgm | pnmtopng -alpha=ALPHAFILE",
        "ALPHA ppmtopgm | pamdepth 65535 | pnmtopng -interlace -alpha=ALPHAFILE16",
        "pnmtopng -transparent =rgb:80/80/80", "ppmtopgm | pnmtopng -transparent =gray80", "pamcut 0 0 1 1 | pnmtopng -interlace",
        "pamcut 0 0 3 2 | pnmtopng -interlace", "pamcut 5 5 9 7 | ppmtopgm | pamdepth 3 | pnmtopng -interlace",
    ];

    [NeedsFact(false, "pnmtopng", "pngtopam", "pamdepth", "pnmquant", "ppmtopgm", "pamcut")]
    public void MatchesPngtopamOnEveryColourTypeDepthAndInterlace()
    {
        var seen = new HashSet<(int Type, int Depth, int Interlace)>();
        foreach (var p in Pipelines) seen.Add(MatchesPngtopam(p));
        log.WriteLine(string.Join(" ", seen.Order()));
        foreach (int t in new[] { 0, 2, 3, 4, 6 }) Assert.Contains(seen, s => s.Type == t);
        foreach (int d in new[] { 1, 2, 4, 8, 16 }) Assert.Contains(seen, s => s.Depth == d);
        Assert.Contains(seen, s => s.Interlace == 1 && s.Depth == 16);
        Assert.Contains(seen, s => s.Type == 2 && s.Depth == 16);
        Assert.Contains(seen, s => s.Type == 6 && s.Depth == 16);
        Assert.Contains(seen, s => s.Type == 0 && s.Depth == 16);
        Assert.Contains(seen, s => s.Interlace == 1 && s.Depth < 8);
    }

    (int, int, int) MatchesPngtopam(string pipeline)
    {
        var dir = Directory.CreateTempSubdirectory("vitsharp-png").FullName;
        try
        {
            var src = Source();
            File.WriteAllBytes(Path.Combine(dir, "src.ppm"), Pnm(src));
            if (pipeline.StartsWith("ALPHA "))
            {
                // An alpha mask with every value: a gradient over x and y.
                var a = new byte[src.Width * src.Height];
                for (int y = 0; y < src.Height; y++) for (int x = 0; x < src.Width; x++) a[y * src.Width + x] = (byte)(x * 2 + y);
                File.WriteAllBytes(Path.Combine(dir, "a.pgm"), Pnm(new Image(src.Width, src.Height, 1, a)));
                TestEnv.Run("bash", $"-c \"pamdepth 65535 {dir}/a.pgm > {dir}/a16.pgm\"");
                pipeline = pipeline[6..].Replace("ALPHAFILE16", $"{dir}/a16.pgm").Replace("ALPHAFILE", $"{dir}/a.pgm");
            }
            var png = TestEnv.Run("bash", $"-c \"cat {dir}/src.ppm | {pipeline}\"");
            var pam = TestEnv.Run("pngtopam", "-alphapam", png);
            var ours = ImageCodecs.Decode(png, pipeline);
            var theirs = ImageCodecs.Decode(pam, pipeline + " (pngtopam)");
            int depth = png[24], colorType = png[25], interlace = png[28];
            log.WriteLine($"{pipeline}: colour type {colorType}, depth {depth}, interlace {interlace} -> {ours}");
            // pngtopam -alphapam always writes an alpha plane (opaque when the PNG has none)
            bool pngHasAlpha = colorType is 4 or 6 || HasChunk(png, "tRNS");
            if (!pngHasAlpha) ours = AddOpaqueAlpha(ours);
            // pngtopam writes a palette image whose colours are all gray as a gray image; we always give RGB for palettes
            if (colorType == 3 && theirs.Channels == 2) theirs = GrayAlphaToRgba(theirs);
            Assert.Equal((theirs.Width, theirs.Height, theirs.Channels, theirs.BitDepth), (ours.Width, ours.Height, ours.Channels, ours.BitDepth));
            if (ours.BitDepth == 16) Assert.Equal(theirs.Pixels16, ours.Pixels16);
            else Assert.Equal(theirs.Pixels, ours.Pixels);
            return (colorType, depth, interlace);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>The real photos of shared/images against libpng.</summary>
    [NeedsFact(true, "pngtopam")]
    public void MatchesPngtopamOnSharedPhotos()
    {
        foreach (var f in Directory.GetFiles(Path.Combine(TestEnv.SharedDir!, "images"), "*.png").Order())
        {
            var png = File.ReadAllBytes(f);
            var ours = ImageCodecs.Decode(png, f);
            bool alpha = ours.Channels is 2 or 4;
            var theirs = ImageCodecs.Decode(TestEnv.Run("pngtopam", alpha ? "-alphapam" : "", png), f + " (pngtopam)");
            log.WriteLine($"{Path.GetFileName(f)}: colour type {png[25]}, depth {png[24]}, interlace {png[28]} -> {ours}");
            Assert.Equal((theirs.Width, theirs.Height, theirs.Channels, theirs.BitDepth), (ours.Width, ours.Height, ours.Channels, ours.BitDepth));
            Assert.Equal(theirs.Pixels, ours.Pixels);
            Assert.Equal(theirs.Pixels16, ours.Pixels16);
        }
    }

    /// <summary>Our encoder's four colour types at 8 and 16 bits, read back by libpng (pngtopam) and by our decoder.</summary>
    [NeedsFact(false, "pngtopam")]
    public void EncoderRoundTripsThroughLibpng()
    {
        var src = Source();
        foreach (var img in new[] { src, Gray(src), WithAlpha(src), WithAlpha(Gray(src)), Sixteen(src), Sixteen(Gray(src)) })
        {
            using var ms = new MemoryStream();
            new PngEncoder().Encode(img, ms);
            var back = ImageCodecs.Decode(TestEnv.Run("pngtopam", img.Channels is 2 or 4 ? "-alphapam" : "", ms.ToArray()), "pngtopam of our PNG");
            Assert.Equal((img.Width, img.Height, img.Channels, img.BitDepth), (back.Width, back.Height, back.Channels, back.BitDepth));
            if (img.BitDepth == 16) Assert.Equal(img.Pixels16, back.Pixels16); else Assert.Equal(img.Pixels, back.Pixels);
            var ours = ImageCodecs.Decode(ms.ToArray(), "our PNG");
            if (img.BitDepth == 16) Assert.Equal(img.Pixels16, ours.Pixels16); else Assert.Equal(img.Pixels, ours.Pixels);
        }
    }

    static bool HasChunk(byte[] png, string type)
    {
        for (int pos = 8; pos + 8 <= png.Length; pos += 12 + BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos)))
            if (System.Text.Encoding.ASCII.GetString(png, pos + 4, 4) == type) return true;
        return false;
    }

    static Image AddOpaqueAlpha(Image s)
    {
        int c = s.Channels, n = s.Width * s.Height;
        if (s.BitDepth == 16)
        {
            var p = new ushort[n * (c + 1)];
            for (int i = 0; i < n; i++) { for (int k = 0; k < c; k++) p[i * (c + 1) + k] = s.Pixels16![i * c + k]; p[i * (c + 1) + c] = ushort.MaxValue; }
            return new Image(s.Width, s.Height, c + 1, p);
        }
        var q = new byte[n * (c + 1)];
        for (int i = 0; i < n; i++) { for (int k = 0; k < c; k++) q[i * (c + 1) + k] = s.Pixels![i * c + k]; q[i * (c + 1) + c] = 255; }
        return new Image(s.Width, s.Height, c + 1, q);
    }

    static Image GrayAlphaToRgba(Image s)
    {
        int n = s.Width * s.Height; var p = new byte[n * 4];
        for (int i = 0; i < n; i++) { p[4 * i] = p[4 * i + 1] = p[4 * i + 2] = s.Pixels![2 * i]; p[4 * i + 3] = s.Pixels[2 * i + 1]; }
        return new Image(s.Width, s.Height, 4, p);
    }

    static Image Gray(Image s) { var p = new byte[s.Width * s.Height]; for (int i = 0; i < p.Length; i++) p[i] = s.Pixels![3 * i + 1]; return new Image(s.Width, s.Height, 1, p); }
    static Image WithAlpha(Image s)
    {
        int c = s.Channels, n = s.Width * s.Height; var p = new byte[n * (c + 1)];
        for (int i = 0; i < n; i++) { for (int k = 0; k < c; k++) p[i * (c + 1) + k] = s.Pixels![i * c + k]; p[i * (c + 1) + c] = (byte)(i * 7); }
        return new Image(s.Width, s.Height, c + 1, p);
    }
    static Image Sixteen(Image s) { var p = new ushort[s.Pixels!.Length]; for (int i = 0; i < p.Length; i++) p[i] = (ushort)(s.Pixels[i] * 257 + i % 200); return new Image(s.Width, s.Height, s.Channels, p); }

    [Fact]
    public void PpmRoundTripAndAsciiVariants()
    {
        var src = Source();
        using var ms = new MemoryStream();
        new PnmEncoder().Encode(src, ms);
        Assert.Equal(src.Pixels, ImageCodecs.Decode(ms.ToArray(), "ppm").Pixels);
        var p3 = System.Text.Encoding.ASCII.GetBytes("P3\n# comment\n2 1\n255\n255 0 0  0 0 255\n");
        Assert.Equal(new byte[] { 255, 0, 0, 0, 0, 255 }, ImageCodecs.Decode(p3, "p3").Pixels);
        var p2 = System.Text.Encoding.ASCII.GetBytes("P2 3 1 15 0 15 5");
        Assert.Equal(new byte[] { 0, 255, 85 }, ImageCodecs.Decode(p2, "p2").Pixels);
        var p1 = System.Text.Encoding.ASCII.GetBytes("P1 3 1 1 0 1");
        Assert.Equal(new byte[] { 0, 255, 0 }, ImageCodecs.Decode(p1, "p1").Pixels);
    }

    [NeedsFact(false, "ppmtobmp", "bmptopnm", "pnmquant")]
    public void BmpDecodesAgainstNetpbm()
    {
        var src = Source().Crop(0, 0, 37, 29);
        using var ms = new MemoryStream();
        new PnmEncoder().Encode(src, ms);
        foreach (var args in new[] { "-bpp 24", "-bpp 8", "-bpp 4", "-bpp 1" })
        {
            var input = args == "-bpp 24" ? ms.ToArray() : TestEnv.Run("pnmquant", args == "-bpp 8" ? "200" : args == "-bpp 4" ? "16" : "2", ms.ToArray());
            var bmp = TestEnv.Run("ppmtobmp", args, input);
            var ours = ImageCodecs.Decode(bmp, "bmp " + args);
            var theirs = ImageCodecs.Decode(TestEnv.Run("bmptopnm", "", bmp), "bmptopnm").ToRgb();
            Assert.Equal(theirs.Pixels, ours.ToRgb().Pixels);
        }
    }
}
