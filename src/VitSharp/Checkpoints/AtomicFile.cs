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
    public static void RemoveOrphans(string dir, string fileName) => Remove(dir, $".{fileName}.*.tmp", fileName);

    /// <summary>Deletes the temporary files of every file of <paramref name="dir"/> (not its subfolders) that a writer
    /// killed mid-write left behind: names <c>.FILE.PID.GUID.tmp</c> whose process is gone. Files of live writers and
    /// any other file are left alone. Returns the paths deleted. A training run calls this as it starts.</summary>
    public static IReadOnlyList<string> RemoveOrphans(string dir) => Directory.Exists(dir) ? Remove(dir, ".*.tmp", null) : [];

    private static List<string> Remove(string dir, string pattern, string? fileName)
    {
        var removed = new List<string>();
        try
        {
            foreach (var f in Directory.EnumerateFiles(dir, pattern))
            {
                if (!IsOrphan(Path.GetFileName(f), fileName)) continue;
                try { File.Delete(f); removed.Add(f); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return removed;
    }

    // ".NAME.PID.GUID.tmp" (NAME may itself hold dots; GUID is 32 hex digits) of a process no longer running.
    private static bool IsOrphan(string name, string? fileName)
    {
        var parts = name.Split('.');
        if (parts.Length < 5 || parts[0] != "" || parts[^1] != "tmp") return false;
        if (parts[^2].Length != 32 || !Guid.TryParseExact(parts[^2], "N", out _)) return false;
        if (!int.TryParse(parts[^3], System.Globalization.NumberStyles.None, null, out var pid)) return false;
        if (fileName is not null && string.Join('.', parts[1..^3]) != fileName) return false;
        return !IsRunning(pid);
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
