using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace VitSharp.Bench;

/// <summary>
/// A bounded loopback load on `vit serve`: C concurrent clients POST one image to /v1/classify for S seconds (after a
/// warm-up), then it prints requests/s, p50/p99 latency and the mean batch size (images per forward pass, from the
/// server's /metrics before and after the timed window).
/// Options: --url http://127.0.0.1:PORT (a running server; else it starts one: --vit PATH, default the CLI's Release build,
/// --checkpoint PATH or 'default', --serve-args "..." passed on)  --clients 32  --seconds 20  --warmup 3
/// --image samples/chelsea.png  --max-requests 200000 (a bound on the whole run)  --top-k 5.
/// Only loopback URLs are accepted: this is a load test of a local server, nothing else.
/// </summary>
public sealed class ServeBench : IBench
{
    public string Name => "serve";
    public string Description => "requests/s, p50/p99 and mean batch size of vit serve under 32 loopback clients";

    public int Run(string[] args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string[] args)
    {
        int clients = GemmBench.Opt(args, "--clients", 32);
        double seconds = double.Parse(GemmBench.OptS(args, "--seconds") ?? "20", CultureInfo.InvariantCulture);
        double warmup = double.Parse(GemmBench.OptS(args, "--warmup") ?? "3", CultureInfo.InvariantCulture);
        int maxRequests = GemmBench.Opt(args, "--max-requests", 200_000);
        int topK = GemmBench.Opt(args, "--top-k", 5);
        var repo = RepoRoot();
        var imagePath = GemmBench.OptS(args, "--image") ?? Path.Combine(repo, "samples", "chelsea.png");
        var image = await File.ReadAllBytesAsync(imagePath);
        if (clients <= 0 || seconds <= 0 || maxRequests <= 0) throw new ArgumentException("--clients, --seconds and --max-requests must be positive");

        Process? server = null;
        var url = GemmBench.OptS(args, "--url");
        try
        {
            if (url is null)
            {
                int port = FreePort();
                url = $"http://127.0.0.1:{port}";
                var vit = GemmBench.OptS(args, "--vit") ?? Path.Combine(repo, "src", "VitSharp.Cli", "bin", "Release", "net10.0", "vit");
                var start = new ProcessStartInfo(vit) { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var a in new[] { "serve", "--urls", url }) start.ArgumentList.Add(a);
                if (GemmBench.OptS(args, "--checkpoint") is { } ck and not "default") { start.ArgumentList.Add("--checkpoint"); start.ArgumentList.Add(ck); }
                foreach (var a in (GemmBench.OptS(args, "--serve-args") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)) start.ArgumentList.Add(a);
                server = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {vit}");
                server.OutputDataReceived += (_, _) => { };   // the access log: drained, not kept
                server.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("serve: " + e.Data); };
                server.BeginOutputReadLine();
                server.BeginErrorReadLine();
                Console.WriteLine($"started: {vit} {string.Join(' ', start.ArgumentList)}");
            }
            var target = new Uri(url);
            if (!IPAddress.TryParse(target.Host, out var ip) ? target.Host != "localhost" : !IPAddress.IsLoopback(ip))
                throw new ArgumentException($"--url {url}: only loopback servers are load-tested");

            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
            { BaseAddress = target, Timeout = TimeSpan.FromSeconds(60) };
            await WaitReady(http, server, TimeSpan.FromSeconds(120));

            var path = $"/v1/classify?top_k={topK}";
            long budget = maxRequests;
            if (warmup > 0) await Load(http, path, image, clients, TimeSpan.FromSeconds(warmup), () => Interlocked.Decrement(ref budget) >= 0);
            var before = await http.GetStringAsync("/metrics");
            var sw = Stopwatch.StartNew();
            var (latencies, errors) = await Load(http, path, image, clients, TimeSpan.FromSeconds(seconds), () => Interlocked.Decrement(ref budget) >= 0);
            double elapsed = sw.Elapsed.TotalSeconds;
            var after = await http.GetStringAsync("/metrics");

            latencies.Sort();
            double passes = Sum(after, "vitsharp_serve_batch_size_count") - Sum(before, "vitsharp_serve_batch_size_count");
            double images = Sum(after, "vitsharp_serve_batch_size_sum") - Sum(before, "vitsharp_serve_batch_size_sum");
            var model = await http.GetStringAsync("/v1/model");
            var checkpoint = Regex.Match(model, "\"checkpoint\":\"([^\"]*)\"").Groups[1].Value;
            Console.WriteLine($"RESULT serve checkpoint={checkpoint} clients={clients} seconds={elapsed:F1} requests={latencies.Count} errors={errors} " +
                              $"req/s={latencies.Count / elapsed:F1} p50_ms={Percentile(latencies, 0.50):F1} p99_ms={Percentile(latencies, 0.99):F1} " +
                              $"mean_batch={(passes > 0 ? images / passes : 0):F2} forward_passes={passes:F0} cores={Environment.ProcessorCount}");
            return errors == 0 ? 0 : 1;
        }
        finally
        {
            if (server is { HasExited: false })
            {
                server.Kill();
                server.WaitForExit(10_000);
            }
            server?.Dispose();
        }
    }

    /// <summary>C clients, each posting and waiting for its answer, until the time is up or the request budget is spent.</summary>
    private static async Task<(List<double> Ms, int Errors)> Load(HttpClient http, string path, byte[] image, int clients, TimeSpan duration, Func<bool> take)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var all = new List<double>();
        int errors = 0;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            var mine = new List<double>();
            while (Stopwatch.GetTimestamp() < deadline && take())
            {
                long t0 = Stopwatch.GetTimestamp();
                using var r = await http.PostAsync(path, new ByteArrayContent(image));
                await r.Content.ReadAsByteArrayAsync();
                if (r.StatusCode == HttpStatusCode.OK) mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                else Interlocked.Increment(ref errors);
            }
            lock (all) all.AddRange(mine);
        })));
        return (all, errors);
    }

    private static async Task WaitReady(HttpClient http, Process? server, TimeSpan limit)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < limit)
        {
            if (server is { HasExited: true }) throw new InvalidOperationException($"vit serve exited with code {server.ExitCode}");
            try { if ((await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK) return; }
            catch (HttpRequestException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException($"the server was not ready within {limit.TotalSeconds:F0} s");
    }

    /// <summary>The sum of a metric's samples in Prometheus text (0 when absent).</summary>
    internal static double Sum(string text, string name) =>
        text.Split('\n').Select(l => Regex.Match(l, $@"^{Regex.Escape(name)}(?:\{{[^}}]*\}})? (\S+)$"))
            .Where(m => m.Success).Sum(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    internal static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "VitSharp.slnx"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }
}
