namespace VitSharp.Data.Codecs;

/// <summary>
/// The codec registry: decodes any registered format by sniffing its magic bytes, and encodes PNG and PPM/PGM.
/// Built in: PNG, JPEG, BMP, PNM (P1–P6). Applications add their own with <see cref="Register"/>.
/// </summary>
public static class ImageCodecs
{
    static readonly object Gate = new();
    static IImageDecoder[] _decoders = [new PngDecoder(), new JpegDecoder(), new BmpDecoder(), new PnmDecoder()];

    public static IReadOnlyList<IImageDecoder> Decoders => _decoders;

    /// <summary>Adds a decoder; it is tried before the built-in ones, so it can also replace one.</summary>
    public static void Register(IImageDecoder decoder)
    {
        lock (Gate) _decoders = [decoder, .. _decoders];
    }

    public static Image Decode(string path, DecodeOptions? options = null)
    {
        options ??= DecodeOptions.Default;
        using var f = File.OpenRead(path);
        return Decode(f, path, options);
    }

    public static Image Decode(Stream stream, string nameForErrors, DecodeOptions? options = null)
    {
        options ??= DecodeOptions.Default;
        return Decode(ReadAll(stream, nameForErrors, options.MaxFileBytes), nameForErrors, options);
    }

    public static Image Decode(ReadOnlySpan<byte> data, string nameForErrors, DecodeOptions? options = null)
    {
        options ??= DecodeOptions.Default;
        var decoder = FindDecoder(data) ?? throw new ImageFormatException(nameForErrors,
            data.Length == 0 ? "empty file" : "unknown image format (no registered decoder recognises its first bytes)");
        return decoder.Decode(data, nameForErrors, options);
    }

    public static IImageDecoder? FindDecoder(ReadOnlySpan<byte> header)
    {
        foreach (var d in _decoders) if (d.Sniff(header)) return d;
        return null;
    }

    /// <summary>Writes PNG for ".png", binary PPM/PGM for ".ppm", ".pgm", ".pnm" (PAM-free netpbm, alpha dropped).</summary>
    public static void Save(Image image, string path)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        IImageEncoder enc = ext switch
        {
            ".png" => new PngEncoder(),
            ".ppm" or ".pgm" or ".pnm" => new PnmEncoder(),
            _ => throw new ArgumentException($"{path}: no encoder for '{ext}' (png, ppm, pgm, pnm)"),
        };
        using var f = File.Create(path);
        enc.Encode(image, f);
    }

    static byte[] ReadAll(Stream s, string name, long max)
    {
        if (s.CanSeek)
        {
            long len = s.Length - s.Position;
            if (len > max) throw new ImageFormatException(name, $"file of {len} bytes exceeds the limit of {max}");
            var buf = new byte[len];
            s.ReadExactly(buf);
            return buf;
        }
        using var ms = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = s.Read(chunk)) > 0)
        {
            if (ms.Length + n > max) throw new ImageFormatException(name, $"stream exceeds the limit of {max} bytes");
            ms.Write(chunk, 0, n);
        }
        return ms.ToArray();
    }
}
