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

    public static Dictionary<string, HostArray> Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        var result = new Dictionary<string, HostArray>();
        try
        {
            using var zip = ZipFile.OpenRead(path);
            foreach (var entry in zip.Entries)
            {
                if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal)) continue;
                var name = entry.FullName[..^4];
                if (entry.Length > int.MaxValue) throw new CheckpointException(path, "array larger than 2 GiB", name);
                using var s = entry.Open();
                try { result[name] = Npy.Read(s, $"{path}:{name}"); }
                catch (CheckpointException e) { throw new CheckpointException(path, e.Detail, name, e); }
            }
        }
        catch (InvalidDataException e) { throw new CheckpointException(path, $"corrupt or truncated .npz archive: {e.Message}", inner: e); }
        return result;
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
