using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace VitSharp.Cli.Serving;

/// <summary>
/// The service's instruments on the <see cref="MeterName"/> meter (System.Diagnostics.Metrics), exported through
/// OpenTelemetry's Prometheus exporter at /metrics: requests by route and status, request latency, images per forward
/// pass, the batching queue's depth and the label-set cache's hits and misses.
/// </summary>
public sealed class ServeMetrics : IDisposable
{
    public const string MeterName = "VitSharp.Serve";

    /// <summary>Latency bucket bounds in milliseconds (1 ms to 30 s).</summary>
    public static readonly IReadOnlyList<double> LatencyBucketsMs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000];

    /// <summary>Batch-size bucket bounds (images per forward pass).</summary>
    public static readonly IReadOnlyList<int> BatchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _latency;
    private readonly Histogram<int> _batch;
    private readonly UpDownCounter<long> _queue;
    private readonly Counter<long> _labelCache;

    /// <summary>Instruments on a meter made by <paramref name="factory"/> (the host's, so each host's meter is its own),
    /// or on a new process-wide meter without one.</summary>
    public ServeMetrics(IMeterFactory? factory = null)
    {
        _ownsMeter = factory is null;
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _requests = _meter.CreateCounter<long>("vitsharp.serve.requests", "{request}", "HTTP requests answered, by route and status code");
        _latency = _meter.CreateHistogram<double>("vitsharp.serve.request.duration", "ms", "time from request start to answer, by route and status code",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBucketsMs });
        _batch = _meter.CreateHistogram<int>("vitsharp.serve.batch.size", "{image}", "images in one forward pass of the batching worker",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = BatchBuckets });
        _queue = _meter.CreateUpDownCounter<long>("vitsharp.serve.queue.depth", "{image}", "images waiting for a forward pass");
        _labelCache = _meter.CreateCounter<long>("vitsharp.serve.label_cache.lookups", "{lookup}",
            "/v1/zeroshot label sets looked up in the text-embedding cache, by result (hit, miss)");
    }

    /// <summary>One answered request: <paramref name="route"/> is the endpoint's pattern (or "other"), so unknown paths
    /// cannot grow the label set.</summary>
    public void Request(string route, int status, double milliseconds)
    {
        var tags = new TagList { { "route", route }, { "status", status } };
        _requests.Add(1, tags);
        _latency.Record(milliseconds, tags);
    }

    /// <summary>One forward pass over <paramref name="images"/> images.</summary>
    public void Batch(int images) => _batch.Record(images);

    /// <summary>Images entering (+n) or leaving (−n) the batching queue.</summary>
    public void Queue(int delta) => _queue.Add(delta);

    /// <summary>One /v1/zeroshot label set found in the text-embedding cache (hit) or embedded by the text tower (miss).</summary>
    public void LabelCache(bool hit) => _labelCache.Add(1, new KeyValuePair<string, object?>("result", hit ? "hit" : "miss"));

    /// <summary>Disposes the meter unless the factory owns it (the host disposes those).</summary>
    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }
}
