namespace VitSharp.Checkpoints;

/// <summary>Writes a file so that readers see either the old file or the complete new one, never a torn write.</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        RemoveOrphans(dir, Path.GetFileName(full));
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var s = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(s);
                s.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Deletes the temporary files of earlier writes of this file whose process is gone (killed mid-write);
    /// those of a live process (another writer) are left alone.</summary>
    public static void RemoveOrphans(string dir, string fileName)
    {
        try
        {
            foreach (var f in Directory.EnumerateFiles(dir, $".{fileName}.*.tmp"))
            {
                var parts = Path.GetFileName(f)[(fileName.Length + 2)..].Split('.');
                if (parts.Length != 3 || !int.TryParse(parts[0], out var pid) || IsRunning(pid)) continue;
                try { File.Delete(f); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
