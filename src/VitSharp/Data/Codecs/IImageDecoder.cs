namespace VitSharp.Data.Codecs;

/// <summary>A format's decoder. Implement it (and register it with <see cref="ImageCodecs.Register"/>) to plug in a codec.</summary>
public interface IImageDecoder
{
    /// <summary>Short name, e.g. "png".</summary>
    string Format { get; }
    /// <summary>True when the first bytes of a file (at least 16 when the file has them) look like this format.</summary>
    bool Sniff(ReadOnlySpan<byte> header);
    /// <summary>Decodes a whole file; throws <see cref="ImageFormatException"/> naming <paramref name="name"/> on bad data.</summary>
    Image Decode(ReadOnlySpan<byte> data, string name, DecodeOptions options);
}

/// <summary>Writes an image to a stream in one format.</summary>
public interface IImageEncoder
{
    string Format { get; }
    void Encode(Image image, Stream output);
}

/// <summary>Limits and switches that bound what a hostile file can make a decoder do.</summary>
public sealed record DecodeOptions
{
    public static readonly DecodeOptions Default = new();
    /// <summary>Largest width × height accepted (2^28 by default: 16384 × 16384).</summary>
    public long MaxPixels { get; init; } = 1L << 28;
    /// <summary>Largest file read from a stream or path (1 GiB by default).</summary>
    public long MaxFileBytes { get; init; } = 1L << 30;
    /// <summary>Rotate/flip JPEGs as their EXIF Orientation tag says (true by default, like PIL's ImageOps.exif_transpose).</summary>
    public bool ApplyExifOrientation { get; init; } = true;

    internal void CheckSize(string name, long width, long height)
    {
        if (width <= 0 || height <= 0) throw new ImageFormatException(name, $"image size {width}x{height} is not positive");
        if (width * height > MaxPixels)
            throw new ImageFormatException(name, $"image size {width}x{height} exceeds the limit of {MaxPixels} pixels");
    }
}
