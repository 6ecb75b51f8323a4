using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;

namespace VitSharp.Tests.Codecs;

/// <summary>Where the shared data and the Debian reference tools are, and how to call the tools.</summary>
public static class TestEnv
{
    static readonly Lazy<string?> Shared = new(() =>
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, "shared", "datasets"))) return Path.Combine(d.FullName, "shared");
        return null;
    });

    /// <summary>The workplace's shared/ folder (found by walking up from the test binaries), or null.</summary>
    public static string? SharedDir => Shared.Value;

    public static string DataDir => Path.Combine(AppContext.BaseDirectory, "Data", "images");

    public static bool HasTool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(p => p.Length > 0 && File.Exists(Path.Combine(p, name)));

    /// <summary>Runs a tool with bytes on stdin and returns its stdout; fails the test on a non-zero exit.</summary>
    public static byte[] Run(string exe, string args, byte[]? stdin = null)
    {
        var psi = new ProcessStartInfo(exe, args)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi)!;
        var outTask = Task.Run(() => { using var ms = new MemoryStream(); p.StandardOutput.BaseStream.CopyTo(ms); return ms.ToArray(); });
        var errTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.BaseStream.Write(stdin);
        p.StandardInput.Close();
        var output = outTask.Result;
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {args} exited {p.ExitCode}: {errTask.Result}");
        return output;
    }

    /// <summary>The first <paramref name="count"/> files ending in one of <paramref name="extensions"/> of a .tar.gz, streamed.</summary>
    public static List<(string Name, byte[] Data)> FirstTarEntries(string tarGz, int count, params string[] extensions)
    {
        var list = new List<(string, byte[])>();
        using var f = File.OpenRead(tarGz);
        using var gz = new GZipStream(f, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        while (list.Count < count && tar.GetNextEntry() is { } e)
        {
            if (e.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || e.DataStream is null) continue;
            if (!extensions.Any(x => e.Name.EndsWith(x, StringComparison.OrdinalIgnoreCase))) continue;
            using var ms = new MemoryStream();
            e.DataStream.CopyTo(ms);
            list.Add((e.Name, ms.ToArray()));
        }
        return list;
    }
}

/// <summary>A fact that is skipped (and counted as skipped) when shared/ or a Debian tool is missing.</summary>
public sealed class NeedsFactAttribute : FactAttribute
{
    public NeedsFactAttribute(bool shared, params string[] tools)
    {
        if (shared && TestEnv.SharedDir is null) Skip = "needs ../shared (datasets and photos), not found above the test directory";
        var missing = tools.Where(t => !TestEnv.HasTool(t)).ToArray();
        if (missing.Length > 0) Skip = $"needs {string.Join(", ", missing)} (apt-get install libjpeg-turbo-progs netpbm)";
    }
}

/// <summary>Pixel comparison summary: how many samples differ and by how much.</summary>
public readonly record struct Diff(long Samples, long Different, int Max)
{
    public static Diff Of(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths {a.Length} vs {b.Length}");
        long d = 0; int m = 0;
        for (int i = 0; i < a.Length; i++) { int x = Math.Abs(a[i] - b[i]); if (x != 0) { d++; m = Math.Max(m, x); } }
        return new Diff(a.Length, d, m);
    }
    public override string ToString() => $"{Different}/{Samples} samples differ, max {Max}";
}

/// <summary>The theory twin of <see cref="NeedsFactAttribute"/>.</summary>
public sealed class NeedsTheoryAttribute : TheoryAttribute
{
    public NeedsTheoryAttribute(bool shared, params string[] tools) => Skip = new NeedsFactAttribute(shared, tools).Skip;
}
