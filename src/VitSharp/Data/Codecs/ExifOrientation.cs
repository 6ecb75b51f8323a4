using System.Buffers.Binary;

namespace VitSharp.Data.Codecs;

/// <summary>Reads the Orientation tag (0x0112) of IFD0 from an EXIF block (the TIFF structure after "Exif\0\0").</summary>
internal static class ExifOrientation
{
    /// <summary>1–8, or 1 when absent or unreadable (a broken EXIF block is not worth failing the image for).</summary>
    public static int Read(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8) return 1;
        bool le = tiff[0] == 'I' && tiff[1] == 'I';
        if (!le && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
        long ifd = le ? BinaryPrimitives.ReadUInt32LittleEndian(tiff[4..]) : BinaryPrimitives.ReadUInt32BigEndian(tiff[4..]);
        if (ifd < 8 || ifd + 2 > tiff.Length) return 1;
        int n = U16(tiff, (int)ifd, le);
        for (int i = 0; i < n; i++)
        {
            int e = (int)ifd + 2 + 12 * i;
            if (e + 12 > tiff.Length) return 1;
            if (U16(tiff, e, le) == 0x0112 && U16(tiff, e + 2, le) == 3)
            {
                int v = U16(tiff, e + 8, le);
                return v is >= 1 and <= 8 ? v : 1;
            }
        }
        return 1;
    }

    static int U16(ReadOnlySpan<byte> t, int o, bool le) =>
        le ? BinaryPrimitives.ReadUInt16LittleEndian(t[o..]) : BinaryPrimitives.ReadUInt16BigEndian(t[o..]);
}

/// <summary>Turns an image stored with EXIF orientation 2–8 upright (what PIL's ImageOps.exif_transpose does).</summary>
public static class ImageOrientation
{
    public static Image Apply(Image img, int orientation)
    {
        if (orientation is < 2 or > 8) return img;
        var src = img.To8Bit();
        int w = src.Width, h = src.Height, c = src.Channels;
        bool swap = orientation >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        var o = new byte[src.Pixels!.Length];
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
            {
                // (sx, sy): the stored pixel shown at (x, y)
                (int sx, int sy) = orientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),
                };
                Array.Copy(src.Pixels, (sy * w + sx) * c, o, (y * ow + x) * c, c);
            }
        return new Image(ow, oh, c, o);
    }
}
