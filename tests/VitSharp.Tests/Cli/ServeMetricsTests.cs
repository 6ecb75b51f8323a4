using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VitSharp.Checkpoints;
using VitSharp.Cli.Serving;
using VitSharp.Inference;

namespace VitSharp.Tests.Cli;

/// <summary>/metrics (Prometheus text through OpenTelemetry) counts what the service did; /readyz waits for the model.</summary>
public class ServeMetricsTests
{
    private static Classifier Tiny() => Classifier.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2 });

    /// <summary>The value of one sample line: <paramref name="name"/> with exactly these labels (besides otel_scope_name).</summary>
    internal static double Sample(string text, string name, params (string Key, string Value)[] labels)
    {
        foreach (var line in text.Split('\n'))
        {
            var m = Regex.Match(line, @"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$");
            if (!m.Success || m.Groups[1].Value != name) continue;
            var have = Regex.Matches(m.Groups[2].Value, "([a-zA-Z_][a-zA-Z0-9_]*)=\"([^\"]*)\"")
                .Where(l => l.Groups[1].Value != "otel_scope_name")
                .Select(l => (l.Groups[1].Value, l.Groups[2].Value)).OrderBy(l => l.Item1).ToArray();
            if (have.SequenceEqual(labels.OrderBy(l => l.Key))) return double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
        }
        throw new Xunit.Sdk.XunitException($"no sample {name}{{{string.Join(",", labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}} in:\n{text}");
    }

    [Fact]
    public async Task MetricsCountRequestsLatencyAndBatches()
    {
        using var classifier = Tiny();
        await using var batching = new BatchingClassifier(classifier, maxBatch: 4);
        var url = $"http://127.0.0.1:{ServeTests.FreePort()}";
        await using var app = ClassifierServer.Build(batching, url, new ServeOptions { Log = null });
        await app.StartAsync();
        // A second service in the same process: its meter is its own, so its requests stay out of the first's /metrics.
        using var other = Tiny();
        await using var otherBatching = new BatchingClassifier(other, maxBatch: 2);
        var otherUrl = $"http://127.0.0.1:{ServeTests.FreePort()}";
        await using var otherApp = ClassifierServer.Build(otherBatching, otherUrl, new ServeOptions { Log = null });
        await otherApp.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        using var otherHttp = new HttpClient { BaseAddress = new Uri(otherUrl) };

        // Started on a loaded model: ready at once (the warm-up batch ran in StartAsync and is not counted).
        Assert.Equal("ready", await http.GetStringAsync("/readyz"));
        Assert.Equal("ok", await http.GetStringAsync("/healthz"));
        var bytes = await File.ReadAllBytesAsync(ServeTests.ImagePath);
        var ok = await Task.WhenAll(Enumerable.Range(0, 7).Select(_ => http.PostAsync("/v1/classify", new ByteArrayContent(bytes))));
        Assert.All(ok, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/embed", new ByteArrayContent(bytes))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("/v1/classify", new ByteArrayContent("not an image"u8.ToArray()))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("/v1/classify?top_k=0", new ByteArrayContent(bytes))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/no/such/path")).StatusCode);
        for (int i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await otherHttp.PostAsync("/v1/classify", new ByteArrayContent(bytes))).StatusCode);

        var scrape = await http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
        Assert.StartsWith("text/plain", scrape.Content.Headers.ContentType!.MediaType);
        var text = await scrape.Content.ReadAsStringAsync();

        // Requests by route and status: the unknown path is "other", so clients cannot grow the label set.
        Assert.Equal(7, Sample(text, "vitsharp_serve_requests_total", ("route", "/v1/classify"), ("status", "200")));
        Assert.Equal(2, Sample(text, "vitsharp_serve_requests_total", ("route", "/v1/classify"), ("status", "400")));
        Assert.Equal(1, Sample(text, "vitsharp_serve_requests_total", ("route", "/v1/embed"), ("status", "200")));
        Assert.Equal(1, Sample(text, "vitsharp_serve_requests_total", ("route", "/readyz"), ("status", "200")));
        Assert.Equal(1, Sample(text, "vitsharp_serve_requests_total", ("route", "/healthz"), ("status", "200")));
        Assert.Equal(1, Sample(text, "vitsharp_serve_requests_total", ("route", "other"), ("status", "404")));
        Assert.DoesNotContain("/no/such/path", text);

        // The latency histogram: one observation per request; cumulative buckets end at the count; the sum is positive.
        var classify = new[] { ("route", "/v1/classify"), ("status", "200") };
        Assert.Equal(7, Sample(text, "vitsharp_serve_request_duration_milliseconds_count", classify));
        Assert.True(Sample(text, "vitsharp_serve_request_duration_milliseconds_sum", classify) > 0);
        Assert.Equal(7, Sample(text, "vitsharp_serve_request_duration_milliseconds_bucket", [.. classify, ("le", "+Inf")]));
        double previous = 0;
        foreach (var le in ServeMetrics.LatencyBucketsMs)
        {
            var v = Sample(text, "vitsharp_serve_request_duration_milliseconds_bucket", [.. classify, ("le", le.ToString(CultureInfo.InvariantCulture))]);
            Assert.True(v >= previous);
            previous = v;
        }

        // Batch sizes: the 8 decoded images went through forward passes of 1..4 images (max batch 4), nothing else did
        // (not the warm-up, not the other service's 3); the queue is empty again.
        Assert.Equal(8, Sample(text, "vitsharp_serve_batch_size_sum"));
        var passes = Sample(text, "vitsharp_serve_batch_size_count");
        Assert.InRange(passes, 2, 8);
        Assert.Equal(passes, Sample(text, "vitsharp_serve_batch_size_bucket", ("le", "4")));
        Assert.Equal(0, Sample(text, "vitsharp_serve_queue_depth"));

        // ASP.NET Core's own meter is exported too.
        Assert.Contains("http_server_request_duration_seconds_count", text);

        var otherText = await otherHttp.GetStringAsync("/metrics");
        Assert.Equal(3, Sample(otherText, "vitsharp_serve_requests_total", ("route", "/v1/classify"), ("status", "200")));
        Assert.Equal(3, Sample(otherText, "vitsharp_serve_batch_size_sum"));
        await otherApp.StopAsync();
        await app.StopAsync();
    }

    [Fact]
    public async Task ReadyOnlyOnceTheModelIsLoadedAndWarmed()
    {
        var loading = new TaskCompletionSource<BatchingClassifier>(TaskCreationOptions.RunContinuationsAsynchronously);
        var url = $"http://127.0.0.1:{ServeTests.FreePort()}";
        await using var app = ClassifierServer.Build(loading.Task, url, new ServeOptions { Log = null });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };

        // Listening, alive, not ready: the model endpoints answer 503 too.
        Assert.Equal("ok", await http.GetStringAsync("/healthz"));
        var notReady = await http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        Assert.Equal("not ready: the model is loading", (string?)JsonNode.Parse(await notReady.Content.ReadAsStringAsync())!["error"]);
        var bytes = await File.ReadAllBytesAsync(ServeTests.ImagePath);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.PostAsync("/v1/classify", new ByteArrayContent(bytes))).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/v1/model")).StatusCode);

        using var classifier = Tiny();
        await using var batching = new BatchingClassifier(classifier, maxBatch: 2);
        loading.SetResult(batching);
        var readiness = (ServeReadiness)app.Services.GetService(typeof(ServeReadiness))!;
        await readiness.Ready.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("ready", await http.GetStringAsync("/readyz"));
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/classify", new ByteArrayContent(bytes))).StatusCode);

        var text = await http.GetStringAsync("/metrics");
        Assert.Equal(1, Sample(text, "vitsharp_serve_requests_total", ("route", "/readyz"), ("status", "503")));
        Assert.Equal(1, Sample(text, "vitsharp_serve_requests_total", ("route", "/v1/classify"), ("status", "503")));
        Assert.Equal(1, Sample(text, "vitsharp_serve_batch_size_sum"));
        await app.StopAsync();
    }

    [Fact]
    public async Task AModelThatFailsToLoadKeepsReadyzAt503WithTheReason()
    {
        var url = $"http://127.0.0.1:{ServeTests.FreePort()}";
        await using var app = ClassifierServer.Build(Task.FromException<BatchingClassifier>(new VitSharpException("x.safetensors: not a checkpoint")),
            url, new ServeOptions { Log = null });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        var r = await http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        Assert.Equal("not ready: x.safetensors: not a checkpoint", (string?)JsonNode.Parse(await r.Content.ReadAsStringAsync())!["error"]);
        Assert.Equal("ok", await http.GetStringAsync("/healthz"));
        await app.StopAsync();
    }
}
