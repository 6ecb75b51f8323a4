using VitSharp.Data;
using VitSharp.Data.Codecs;
using Xunit.Abstractions;

namespace VitSharp.Tests.Codecs;

/// <summary>Our JPEG decoder against libjpeg-turbo's djpeg (islow IDCT, fancy upsampling): the goal is bit-exact output.</summary>
public class JpegParityTests(ITestOutputHelper log)
{
    static readonly DecodeOptions NoExif = new() { ApplyExifOrientation = false };

    static byte[] Ppm(Image img) { using var ms = new MemoryStream(); new PnmEncoder().Encode(img, ms); return ms.ToArray(); }

    static Image Source() => ImageCodecs.Decode(Path.Combine(TestEnv.DataDir, "chelsea_crop128x96.png"));

    Diff Compare(byte[] jpeg, string name)
    {
        var ours = ImageCodecs.Decode(jpeg, name, NoExif);
        var theirs = ImageCodecs.Decode(TestEnv.Run("djpeg", "-pnm", jpeg), name + " (djpeg)");
        Assert.Equal((theirs.Width, theirs.Height, theirs.Channels), (ours.Width, ours.Height, ours.Channels));
        return Diff.Of(ours.Pixels, theirs.Pixels);
    }

    public static TheoryData<string, int, int> Variants => new()
    {
        { "-sample 1x1", 128, 96 }, { "-sample 2x1", 128, 96 }, { "-sample 2x2", 128, 96 }, { "-sample 1x2", 128, 96 },
        { "-sample 4x1", 128, 96 }, { "-sample 2x2 -quality 97", 101, 67 }, { "-sample 2x1", 37, 29 }, { "-sample 2x2", 37, 29 },
        { "-sample 1x2", 37, 29 }, { "-sample 2x2", 2, 5 }, { "-sample 2x2", 1, 1 }, { "-sample 4x2", 53, 41 },
        { "-progressive", 128, 96 }, { "-progressive -sample 1x1 -quality 92", 101, 67 }, { "-progressive -sample 2x1", 37, 29 },
        { "-restart 1", 128, 96 }, { "-restart 1B -sample 1x1", 101, 67 }, { "-restart 2 -progressive", 128, 96 },
        { "-grayscale", 128, 96 }, { "-grayscale -progressive", 37, 29 }, { "-quality 20", 128, 96 }, { "-quality 100 -sample 1x1", 64, 48 },
        { "-optimize -sample 2x2", 128, 96 }, { "-rgb", 64, 48 }, { "-dct float -sample 2x1", 64, 48 },
        { "-sample 1x1,2x2,1x2", 64, 48 },
    };

    [NeedsTheory(false, "cjpeg", "djpeg")]
    [MemberData(nameof(Variants))]
    public void MatchesDjpegOnCjpegVariants(string options, int w, int h)
    {
        var src = Source().Crop(10, 5, Math.Min(w, 118), Math.Min(h, 91));
        if (w > 118 || h > 91) src = Source();
        var jpeg = TestEnv.Run("cjpeg", options, Ppm(src));
        var d = Compare(jpeg, $"cjpeg {options}");
        log.WriteLine($"{options} {src.Width}x{src.Height}: {d}");
        Assert.Equal(0, d.Different);
    }

    /// <summary>Files rewritten by jpegtran (lossless): progressive/restart conversions, rotations, and a multi-scan
    /// sequential file whose components come in separate non-interleaved scans (cjpeg -scans).</summary>
    [NeedsFact(false, "cjpeg", "djpeg", "jpegtran")]
    public void MatchesDjpegOnJpegtranRewrites()
    {
        var baseJpeg = TestEnv.Run("cjpeg", "-sample 2x2 -quality 85", Ppm(Source().Crop(3, 1, 117, 93)));
        var scanFile = Path.GetTempFileName();
        try
        {
            File.WriteAllText(scanFile, "0;\n1;\n2;\n");
            var cases = new (string Name, byte[] Data)[]
            {
                ("jpegtran -progressive", TestEnv.Run("jpegtran", "-progressive", baseJpeg)),
                ("jpegtran -restart 2 -progressive", TestEnv.Run("jpegtran", "-restart 2 -progressive", baseJpeg)),
                ("jpegtran -rotate 90", TestEnv.Run("jpegtran", "-rotate 90", baseJpeg)),
                ("jpegtran -transpose -optimize", TestEnv.Run("jpegtran", "-transpose -optimize", baseJpeg)),
                ("jpegtran -grayscale", TestEnv.Run("jpegtran", "-grayscale", baseJpeg)),
                ("cjpeg -scans (non-interleaved sequential)", TestEnv.Run("cjpeg", $"-sample 1x1 -scans {scanFile}", Ppm(Source()))),
            };
            foreach (var (name, data) in cases)
            {
                var d = Compare(data, name);
                log.WriteLine($"{name}: {d}");
                Assert.Equal(0, d.Different);
            }
        }
        finally { File.Delete(scanFile); }
    }

    [NeedsFact(true, "djpeg")]
    public void MatchesDjpegOnPhotosAndDatasets()
    {
        var files = new List<(string, byte[])> { ("rocket.jpg", File.ReadAllBytes(Path.Combine(TestEnv.SharedDir!, "images", "rocket.jpg"))) };
        files.AddRange(TestEnv.FirstTarEntries(Path.Combine(TestEnv.SharedDir!, "datasets", "imagenette-224.tar.gz"), 150, ".jpeg", ".jpg"));
        files.AddRange(TestEnv.FirstTarEntries(Path.Combine(TestEnv.SharedDir!, "datasets", "cifar10-jpeg.tar.gz"), 150, ".jpeg", ".jpg"));
        long samples = 0, different = 0; int max = 0, exactFiles = 0;
        foreach (var (name, data) in files)
        {
            var d = Compare(data, name);
            samples += d.Samples; different += d.Different; max = Math.Max(max, d.Max);
            if (d.Different == 0) exactFiles++;
            else log.WriteLine($"{name}: {d}");
        }
        log.WriteLine($"{files.Count} files, {exactFiles} exact; {different}/{samples} samples differ, max {max}");
        Assert.Equal(files.Count, exactFiles);
    }
}
