namespace VitSharp.Data;

/// <summary>
/// A decoded image: width × height pixels of 1–4 interleaved channels (HWC), 8 bits per sample, or 16 bits when
/// <see cref="Pixels16"/> is set (PNG/PNM of depth 16 keep their precision; <see cref="To8Bit"/> narrows them).
/// Channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
/// </summary>
public sealed class Image
{
    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }
    /// <summary>8-bit samples, row-major HWC; null when the image holds 16-bit samples.</summary>
    public byte[]? Pixels { get; }
    /// <summary>16-bit samples, row-major HWC; null for 8-bit images.</summary>
    public ushort[]? Pixels16 { get; }
    public int BitDepth => Pixels16 is null ? 8 : 16;

    public Image(int width, int height, int channels, byte[] pixels)
    {
        Check(width, height, channels, pixels.LongLength);
        (Width, Height, Channels, Pixels) = (width, height, channels, pixels);
    }

    public Image(int width, int height, int channels, ushort[] pixels16)
    {
        Check(width, height, channels, pixels16.LongLength);
        (Width, Height, Channels, Pixels16) = (width, height, channels, pixels16);
    }

    static void Check(int w, int h, int c, long length)
    {
        if (w <= 0 || h <= 0) throw new ArgumentException($"image size {w}x{h} must be positive");
        if (c is < 1 or > 4) throw new ArgumentException($"{c} channels: 1 to 4 are supported");
        if (length != (long)w * h * c) throw new ArgumentException($"{length} samples for a {w}x{h}x{c} image");
    }

    /// <summary>The 8-bit samples; 16-bit images are narrowed by rounding (v * 255 / 65535), as libpng's and netpbm's tools do.</summary>
    public Image To8Bit()
    {
        if (Pixels is not null) return this;
        var src = Pixels16!;
        var dst = new byte[src.Length];
        for (int i = 0; i < src.Length; i++) dst[i] = (byte)((src[i] * 255 + 32767) / 65535);
        return new Image(Width, Height, Channels, dst);
    }

    /// <summary>Three 8-bit channels: gray is replicated; alpha is dropped (not composited), as PIL's convert("RGB") does.</summary>
    public Image ToRgb()
    {
        var img = To8Bit();
        if (img.Channels == 3) return img;
        var src = img.Pixels!;
        int n = Width * Height, c = img.Channels;
        var dst = new byte[n * 3];
        for (int i = 0; i < n; i++)
        {
            if (c <= 2) { byte g = src[i * c]; dst[3 * i] = g; dst[3 * i + 1] = g; dst[3 * i + 2] = g; }
            else { dst[3 * i] = src[i * 4]; dst[3 * i + 1] = src[i * 4 + 1]; dst[3 * i + 2] = src[i * 4 + 2]; }
        }
        return new Image(Width, Height, 3, dst);
    }

    /// <summary>Rows y0..y0+h, columns x0..x0+w (a copy); the box must lie inside the image.</summary>
    public Image Crop(int x0, int y0, int w, int h)
    {
        if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || x0 + w > Width || y0 + h > Height)
            throw new ArgumentOutOfRangeException(nameof(x0), $"crop box ({x0},{y0},{w},{h}) outside a {Width}x{Height} image");
        int c = Channels;
        if (Pixels16 is not null)
        {
            var d16 = new ushort[w * h * c];
            for (int y = 0; y < h; y++) Array.Copy(Pixels16, ((y0 + y) * Width + x0) * c, d16, y * w * c, w * c);
            return new Image(w, h, c, d16);
        }
        var d = new byte[w * h * c];
        for (int y = 0; y < h; y++) Buffer.BlockCopy(Pixels!, ((y0 + y) * Width + x0) * c, d, y * w * c, w * c);
        return new Image(w, h, c, d);
    }

    public override string ToString() => $"Image {Width}x{Height}x{Channels} ({BitDepth}-bit)";
}
