using VitSharp.Data;
using VitSharp.Data.Codecs;

namespace VitSharp.Tests.Codecs;

public class RegistryTests
{
    sealed class TinyFormat : IImageDecoder
    {
        public string Format => "tiny";
        public bool Sniff(ReadOnlySpan<byte> h) => h.Length >= 4 && h[..4].SequenceEqual("TINY"u8);
        public Image Decode(ReadOnlySpan<byte> d, string name, DecodeOptions o)
        {
            if (d.Length < 6) throw new ImageFormatException(name, "truncated");
            return new Image(1, 1, 1, [d[5]]);
        }
    }

    [Fact]
    public void SniffsBuiltInFormatsAndPluggedInOnes()
    {
        Assert.Equal("png", ImageCodecs.FindDecoder([137, 80, 78, 71, 13, 10, 26, 10])?.Format);
        Assert.Equal("jpeg", ImageCodecs.FindDecoder([0xFF, 0xD8, 0xFF, 0xE0])?.Format);
        Assert.Equal("bmp", ImageCodecs.FindDecoder("BM......"u8)?.Format);
        Assert.Equal("pnm", ImageCodecs.FindDecoder("P6\n1 1\n255\n"u8)?.Format);
        Assert.Null(ImageCodecs.FindDecoder("TINY?!"u8));
        ImageCodecs.Register(new TinyFormat());
        Assert.Equal(42, ImageCodecs.Decode("TINY?\x2a"u8, "t").Pixels![0]);
        var e = Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode("TINY"u8, "short.tiny"));
        Assert.Equal("short.tiny", e.FileName);
    }

    [Fact]
    public void DecodeFromPathAndStreamAndSaveRoundTrip()
    {
        var path = Path.Combine(TestEnv.DataDir, "chelsea_crop128x96.png");
        var a = ImageCodecs.Decode(path);
        using var f = File.OpenRead(path);
        Assert.Equal(a.Pixels, ImageCodecs.Decode(f, "stream").Pixels);
        var tmp = Path.Combine(Path.GetTempPath(), $"vitsharp-{Guid.NewGuid():N}");
        try
        {
            ImageCodecs.Save(a, tmp + ".png");
            ImageCodecs.Save(a, tmp + ".ppm");
            Assert.Equal(a.Pixels, ImageCodecs.Decode(tmp + ".png").Pixels);
            Assert.Equal(a.Pixels, ImageCodecs.Decode(tmp + ".ppm").Pixels);
        }
        finally { File.Delete(tmp + ".png"); File.Delete(tmp + ".ppm"); }
        var big = new DecodeOptions { MaxFileBytes = 100 };
        Assert.Throws<ImageFormatException>(() => ImageCodecs.Decode(path, big));
    }
}
