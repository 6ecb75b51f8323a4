using VitSharp.Data;
using VitSharp.Data.Codecs;

namespace VitSharp.Tests.Codecs;

public class ExifTests
{
    // A 3x2 gray image:  1 2 3
    //                    4 5 6
    static readonly Image Stored = new(3, 2, 1, [1, 2, 3, 4, 5, 6]);

    [Theory]
    [InlineData(1, 3, 2, new byte[] { 1, 2, 3, 4, 5, 6 })]
    [InlineData(2, 3, 2, new byte[] { 3, 2, 1, 6, 5, 4 })]          // mirrored
    [InlineData(3, 3, 2, new byte[] { 6, 5, 4, 3, 2, 1 })]          // rotated 180
    [InlineData(4, 3, 2, new byte[] { 4, 5, 6, 1, 2, 3 })]          // flipped vertically
    [InlineData(5, 2, 3, new byte[] { 1, 4, 2, 5, 3, 6 })]          // transposed
    [InlineData(6, 2, 3, new byte[] { 4, 1, 5, 2, 6, 3 })]          // rotated 90 clockwise
    [InlineData(7, 2, 3, new byte[] { 6, 3, 5, 2, 4, 1 })]          // transversed
    [InlineData(8, 2, 3, new byte[] { 3, 6, 2, 5, 1, 4 })]          // rotated 90 counter-clockwise
    public void OrientationsTurnTheImageUpright(int orientation, int w, int h, byte[] expected)
    {
        var o = ImageOrientation.Apply(Stored, orientation);
        Assert.Equal((w, h), (o.Width, o.Height));
        Assert.Equal(expected, o.Pixels);
    }

    [Fact]
    public void JpegExifOrientationIsReadAndApplied()
    {
        var jpg = File.ReadAllBytes(Path.Combine(TestEnv.DataDir, "fuzz", "gray.jpg"));
        // APP1 "Exif\0\0" + big-endian TIFF with one IFD0 entry: Orientation (0x0112), SHORT, 1 value = 6.
        byte[] tiff = [(byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
        var body = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        var app1 = new byte[] { 0xFF, 0xE1, (byte)((body.Length + 2) >> 8), (byte)(body.Length + 2) }.Concat(body);
        var withExif = jpg.Take(2).Concat(app1).Concat(jpg.Skip(2)).ToArray();
        var raw = ImageCodecs.Decode(withExif, "exif.jpg", new DecodeOptions { ApplyExifOrientation = false });
        var upright = ImageCodecs.Decode(withExif, "exif.jpg");
        Assert.Equal((raw.Height, raw.Width), (upright.Width, upright.Height));
        Assert.Equal(ImageOrientation.Apply(raw, 6).Pixels, upright.Pixels);
        Assert.Equal(ImageCodecs.Decode(jpg, "plain").Pixels, raw.Pixels);
    }
}
