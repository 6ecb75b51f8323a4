using System.IO.Compression;

namespace VitSharp.Checkpoints;

/// <summary>NumPy .npz archives (a zip of .npy files, stored or deflated), as Google's vision_transformer and big_vision save.</summary>
public static class Npz
{
    public static bool LooksLike(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> b = stackalloc byte[4];
            return f.Read(b) == 4 && b[0] == (byte)'P' && b[1] == (byte)'K';
        }
        catch (IOException) { return false; }
    }

    public static Dictionary<string, HostArray> Read(string path) => Read(path, null);

    public static Dictionary<string, HostArray> Read(string path, Func<string, bool>? wanted) => Read(path, wanted, null);

    /// <summary>Reads the arrays whose names <paramref name="wanted"/> accepts (all when null; it may also throw to
    /// refuse one). Every kept entry's compression ratio is checked
    /// (<see cref="CheckpointLimits.MaxCompressionRatio"/>) and its declared size charged to <see cref="CheckpointLimits.MaxTotalBytes"/> before
    /// any is inflated, and no entry is inflated past its declared size (a zip bomb stops there).</summary>
    public static Dictionary<string, HostArray> Read(string path, Func<string, bool>? wanted, long? maxTotalBytes)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        var result = new Dictionary<string, HostArray>();
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var entries = zip.Entries.Where(e => e.FullName.EndsWith(".npy", StringComparison.Ordinal))
                .Where(e => wanted is null || wanted(e.FullName[..^4])).ToList();
            long stored = 0, decoded = 0;
            foreach (var entry in entries)
            {
                var name = entry.FullName[..^4];
                if (entry.Length > Array.MaxLength) throw new CheckpointException(path, $"array of {entry.Length} bytes is larger than one array holds", name);
                CheckpointLimits.CheckCompression(entry, path, name);
                CheckpointLimits.Charge(ref stored, entry.Length, maxTotalBytes, path, name);
            }
            foreach (var entry in entries)
            {
                var name = entry.FullName[..^4];
                var bytes = new byte[entry.Length];
                using (var s = entry.Open()) s.ReadExactly(bytes);
                try
                {
                    var a = Npy.Parse(bytes, $"{path}:{name}");
                    CheckpointLimits.Charge(ref decoded, a.Data.LongLength * 4, maxTotalBytes, path, name);
                    result[name] = a;
                }
                catch (CheckpointException e) { throw new CheckpointException(path, e.Detail, name, e); }
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new CheckpointException(path, $"corrupt or truncated .npz archive: {e.Message}", inner: e);
        }
        return result;
    }

    /// <summary>The .npy entry names of an archive, without inflating any.</summary>
    public static List<string> Names(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            return zip.Entries.Where(e => e.FullName.EndsWith(".npy", StringComparison.Ordinal)).Select(e => e.FullName[..^4]).ToList();
        }
        catch (InvalidDataException e) { throw new CheckpointException(path, $"corrupt or truncated .npz archive: {e.Message}", inner: e); }
    }

    public static void Write(string path, IReadOnlyDictionary<string, HostArray> arrays)
    {
        AtomicFile.Write(path, s =>
        {
            using var zip = new ZipArchive(s, ZipArchiveMode.Create, leaveOpen: true);
            foreach (var (name, a) in arrays)
            {
                var e = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression);
                using var es = e.Open();
                var tmp = Path.GetTempFileName();
                try
                {
                    Npy.Write(tmp, a.Data, a.Shape);
                    using var fs = File.OpenRead(tmp);
                    fs.CopyTo(es);
                }
                finally { File.Delete(tmp); }
            }
        });
    }
}
