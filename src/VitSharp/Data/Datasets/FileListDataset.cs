using System.Formats.Tar;
using System.IO.Compression;

namespace VitSharp.Data.Datasets;

/// <summary>
/// Images named <c>[split/]&lt;class&gt;/&lt;file&gt;</c>, from a folder tree or straight from a .tar / .tar.gz archive (read once,
/// sequentially, never unpacked to disk; the encoded files stay in memory). Classes are the sorted folder names, as in
/// torchvision's ImageFolder. Decoding happens in <see cref="Load"/>, on the loader's worker threads.
/// </summary>
public sealed class FileListDataset : IImageDataset
{
    private static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm"];
    private readonly List<(string Name, int Label, Func<byte[]> Bytes)> _items;
    private readonly ImageDecoder _decode;

    private FileListDataset(List<(string, int, Func<byte[]>)> items, string[] classes, ImageDecoder decode)
    {
        _items = items;
        Classes = classes;
        _decode = decode;
    }

    public int Count => _items.Count;
    public IReadOnlyList<string> Classes { get; }
    public int Label(int index) => _items[index].Label;
    public string Name(int index) => _items[index].Name;
    public Image Load(int index) => _decode(_items[index].Bytes(), _items[index].Name);

    /// <summary>A folder or an archive; <paramref name="split"/> (e.g. "train") selects a top-level folder when given.</summary>
    public static FileListDataset Open(string path, string? split, ImageDecoder decode)
    {
        if (Directory.Exists(path)) return FromFolder(split is null ? path : Path.Combine(path, split), decode);
        if (File.Exists(path)) return FromArchive(path, split, decode);
        throw new VitSharpException($"{path}: no such folder or archive");
    }

    public static FileListDataset FromFolder(string root, ImageDecoder decode)
    {
        if (!Directory.Exists(root)) throw new VitSharpException($"{root}: no such folder");
        var classes = Directory.GetDirectories(root).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) throw new VitSharpException($"{root}: expected one sub-folder per class");
        var items = new List<(string, int, Func<byte[]>)>();
        for (int c = 0; c < classes.Length; c++)
            foreach (var f in Directory.GetFiles(Path.Combine(root, classes[c]!)).Where(IsImage).Order(StringComparer.Ordinal))
                items.Add((f, c, () => File.ReadAllBytes(f)));
        return new FileListDataset(items, classes!, decode);
    }

    public static FileListDataset FromArchive(string archive, string? split, ImageDecoder decode)
    {
        var files = new List<(string Name, string Class, byte[] Data)>();
        try { ReadArchive(archive, split, files); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or ArgumentException
                                      or (IOException and not FileNotFoundException and not DirectoryNotFoundException))
        {
            throw new VitSharpException($"{archive}: corrupt or truncated archive ({e.Message.Replace('\n', ' ')})", e);
        }
        if (files.Count == 0) throw new VitSharpException($"{archive}: no images under {(split is null ? "<class>/" : split + "/<class>/")}");
        var classes = files.Select(x => x.Class).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i);
        var items = files.OrderBy(x => x.Name, StringComparer.Ordinal)
            .Select(x => (x.Name, index[x.Class], (Func<byte[]>)(() => x.Data))).ToList();
        return new FileListDataset(items, classes, decode);
    }

    private static void ReadArchive(string archive, string? split, List<(string Name, string Class, byte[] Data)> files)
    {
        using (var f = File.OpenRead(archive))
        {
            bool gz = f.ReadByte() == 0x1f && f.ReadByte() == 0x8b;
            f.Position = 0;
            using Stream s = gz ? new GZipStream(f, CompressionMode.Decompress) : f;
            // Read forward only, as a stream: over a seekable file TarReader takes the end of the data right after an
            // entry for the end of the archive, so a tar cut at an entry's end gave the entries before it, silently;
            // forward-only, a tar without its end-of-archive blocks is "unable to read beyond the end of the stream".
            using var tar = new TarReader(gz ? s : new ForwardOnlyStream(s));
            while (tar.GetNextEntry() is { } e)
            {
                if (e.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || e.DataStream is null) continue;
                var parts = e.Name.Replace('\\', '/').TrimStart('.', '/').Split('/', StringSplitOptions.RemoveEmptyEntries);
                if (split is not null) { if (parts.Length < 3 || parts[^3] != split) continue; }
                if (parts.Length < 2 || !IsImage(parts[^1])) continue;
                if (e.Length > Array.MaxLength) throw new VitSharpException($"{archive}: entry {e.Name} of {e.Length} bytes is larger than one image may be");
                var data = new byte[e.Length];
                e.DataStream.ReadExactly(data);
                files.Add((e.Name, parts[^2], data));
            }
        }
    }

    /// <summary>A read-only view of a stream that hides its seeking.</summary>
    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => inner.Read(buffer);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static bool IsImage(string name) => ImageExtensions.Contains(Path.GetExtension(name).ToLowerInvariant());
}
