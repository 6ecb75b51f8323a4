using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.RegularExpressions;
using VitSharp.Data.Codecs;

namespace VitSharp.Bench;

/// <summary>
/// JPEG decode speed, one thread: our decoder vs libjpeg-turbo measured in the same run, on the first N Imagenette
/// 224×224 JPEGs. Peers: djpeg over the same files (a shell loop, minus the same loop over a 1×1 JPEG to remove process
/// start-up) and tjbench (libjpeg-turbo's in-process decompression benchmark) on a few of them.
/// Usage: decode [--files N] [--shared DIR]
/// </summary>
public sealed class DecodeBench : IBench
{
    public string Name => "decode";
    public string Description => "JPEG decode images/s, one thread, vs djpeg/tjbench (Imagenette 224x224)";

    public int Run(string[] args)
    {
        int n = 400;
        string? shared = null;
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--files") n = int.Parse(args[i + 1]);
            if (args[i] == "--shared") shared = args[i + 1];
        }
        shared ??= FindShared();
        if (shared is null) { Console.WriteLine("decode: needs shared/datasets/imagenette-224.tar.gz (pass --shared DIR)"); return 2; }
        var files = ReadJpegs(Path.Combine(shared, "datasets", "imagenette-224.tar.gz"), n);
        long pixels = files.Sum(f => { var img = ImageCodecs.Decode(f, "warmup"); return (long)img.Width * img.Height; });
        Console.WriteLine($"{files.Count} Imagenette JPEGs, {pixels / files.Count} pixels each on average, {files.Sum(f => f.Length) / files.Count} bytes");

        var dir = Directory.CreateTempSubdirectory("vitsharp-decode").FullName;
        try
        {
            for (int i = 0; i < files.Count; i++) File.WriteAllBytes(Path.Combine(dir, $"{i:D5}.jpg"), files[i]);
            File.WriteAllBytes(Path.Combine(dir, "tiny.jpg"), Tiny());
            string loop = $"cd {dir} && for f in 0*.jpg; do djpeg -ppm $f > /dev/null; done";
            string tinyLoop = $"cd {dir} && for f in 0*.jpg; do djpeg -ppm tiny.jpg > /dev/null; done";
            // The machine is shared: 5 rounds alternate ours and the peers, and each side keeps its best round.
            double ours = double.MaxValue, djpeg = double.MaxValue, tiny = double.MaxValue, tj = 0;
            for (int round = 0; round < 5; round++)
            {
                var sw = Stopwatch.StartNew(); // one pass per round, like one tjbench mean per round
                foreach (var f in files) ImageCodecs.Decode(f, "bench");
                ours = Math.Min(ours, sw.Elapsed.TotalSeconds);
                djpeg = Math.Min(djpeg, Time("bash", "-c \"" + loop + "\""));
                tiny = Math.Min(tiny, Time("bash", "-c \"" + tinyLoop + "\""));
                var mps = new List<double>();
                for (int i = 0; i < Math.Min(6, files.Count); i++)
                {
                    var o = Output("tjbench", $"{dir}/{i:D5}.jpg -benchtime 0.3 -warmup 0.1 -quiet");
                    var m = Regex.Matches(o, @"([0-9]+\.[0-9]+)\s*$", RegexOptions.Multiline);
                    if (m.Count > 0) mps.Add(double.Parse(m[^1].Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
                }
                if (mps.Count > 0) tj = Math.Max(tj, mps.Average());
            }
            double perImage = pixels / (double)files.Count, net = djpeg - tiny;
            Console.WriteLine($"VitSharp JpegDecoder      : {files.Count / ours,8:F0} images/s  {pixels / ours / 1e6,7:F1} MP/s");
            Console.WriteLine($"djpeg (processes)         : {files.Count / djpeg,8:F0} images/s raw; start-up {tiny / files.Count * 1e3:F2} ms/process; " +
                              $"net of start-up {files.Count / net,8:F0} images/s  {pixels / net / 1e6,7:F1} MP/s");
            if (tj > 0)
            {
                Console.WriteLine($"tjbench (in-process)      : {tj * 1e6 / perImage,8:F0} images/s  {tj,7:F1} MP/s  (mean over 6 files)");
                Console.WriteLine($"VitSharp / tjbench        : {pixels / ours / 1e6 / tj:P0}");
            }
            Console.WriteLine($"VitSharp / djpeg (net)    : {net / ours:P0}");
        }
        finally { Directory.Delete(dir, true); }
        return 0;
    }

    static string? FindShared()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, "shared", "datasets"))) return Path.Combine(d.FullName, "shared");
        return null;
    }

    static List<byte[]> ReadJpegs(string tarGz, int n)
    {
        var list = new List<byte[]>();
        using var gz = new GZipStream(File.OpenRead(tarGz), CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        while (list.Count < n && tar.GetNextEntry() is { } e)
        {
            if (e.DataStream is null || !e.Name.EndsWith(".JPEG", StringComparison.OrdinalIgnoreCase)) continue;
            using var ms = new MemoryStream();
            e.DataStream.CopyTo(ms);
            list.Add(ms.ToArray());
        }
        return list;
    }

    /// <summary>A 1×1 baseline JPEG made with cjpeg, for measuring djpeg's process start-up.</summary>
    static byte[] Tiny()
    {
        var psi = new ProcessStartInfo("cjpeg") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        p.StandardInput.BaseStream.Write("P6\n1 1\n255\n\x80\x80\x80"u8);
        p.StandardInput.Close();
        using var ms = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(ms);
        p.WaitForExit();
        return ms.ToArray();
    }

    static double Time(string exe, string args)
    {
        var sw = Stopwatch.StartNew();
        Output(exe, args);
        return sw.Elapsed.TotalSeconds;
    }

    static string Output(string exe, string args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return o + err.Result;
    }
}
