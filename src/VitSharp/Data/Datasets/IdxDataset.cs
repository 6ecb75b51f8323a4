using System.Buffers.Binary;
using System.IO.Compression;

namespace VitSharp.Data.Datasets;

/// <summary>
/// MNIST-style idx files (images: magic 0x803, count, rows, cols, bytes; labels: magic 0x801, count, bytes), gzipped or
/// not. Fashion-MNIST uses the same format. Everything is held in memory (70,000 28×28 images are 55 MB).
/// </summary>
public sealed class IdxDataset : IImageDataset
{
    private readonly byte[] _pixels, _labels;
    private readonly int _rows, _cols;

    public IdxDataset(string imagesPath, string labelsPath, IReadOnlyList<string>? classes = null)
    {
        var img = ReadAll(imagesPath);
        var lab = ReadAll(labelsPath);
        if (img.Length < 16 || BinaryPrimitives.ReadInt32BigEndian(img) != 0x803)
            throw new VitSharpException($"{imagesPath}: not an idx image file (magic 0x00000803)");
        if (lab.Length < 8 || BinaryPrimitives.ReadInt32BigEndian(lab) != 0x801)
            throw new VitSharpException($"{labelsPath}: not an idx label file (magic 0x00000801)");
        int n = BinaryPrimitives.ReadInt32BigEndian(img.AsSpan(4));
        _rows = BinaryPrimitives.ReadInt32BigEndian(img.AsSpan(8));
        _cols = BinaryPrimitives.ReadInt32BigEndian(img.AsSpan(12));
        if (BinaryPrimitives.ReadInt32BigEndian(lab.AsSpan(4)) != n)
            throw new VitSharpException($"{labelsPath}: label count differs from the {n} images of {imagesPath}");
        if (img.Length < 16 + (long)n * _rows * _cols || lab.Length < 8 + n)
            throw new VitSharpException($"{imagesPath}: truncated idx data");
        _pixels = img;
        _labels = lab;
        Count = n;
        int k = 0;
        for (int i = 0; i < n; i++) k = Math.Max(k, _labels[8 + i] + 1);
        Classes = classes ?? Enumerable.Range(0, Math.Max(k, 10)).Select(i => i.ToString()).ToArray();
    }

    /// <summary>Finds the standard file names (train- or t10k-) in a folder.</summary>
    public static IdxDataset FromFolder(string dir, bool train)
    {
        string prefix = train ? "train" : "t10k";
        string Find(string kind) =>
            new[] { $"{prefix}-{kind}-idx{(kind == "images" ? 3 : 1)}-ubyte.gz", $"{prefix}-{kind}-idx{(kind == "images" ? 3 : 1)}-ubyte" }
                .Select(f => Path.Combine(dir, f)).FirstOrDefault(File.Exists)
            ?? throw new VitSharpException($"{dir}: no {prefix}-{kind} idx file");
        return new IdxDataset(Find("images"), Find("labels"));
    }

    public int Count { get; }
    public IReadOnlyList<string> Classes { get; }
    public int Label(int index) => _labels[8 + index];

    public Image Load(int index)
    {
        int size = _rows * _cols;
        return new Image(_cols, _rows, 1, _pixels.AsSpan(16 + index * size, size).ToArray());
    }

    private static byte[] ReadAll(string path)
    {
        if (!File.Exists(path)) throw new VitSharpException($"{path}: file not found");
        using var f = File.OpenRead(path);
        Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(f, CompressionMode.Decompress) : f;
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
