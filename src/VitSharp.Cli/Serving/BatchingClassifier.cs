using System.Threading.Channels;
using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Cli.Serving;

/// <summary>
/// Dynamic batching in front of one Classifier: requests wait at most <c>maxDelay</c> for company, then run together
/// as one forward pass (up to <c>maxBatch</c> images). One worker owns the model, so requests never race on it.
/// </summary>
public sealed class BatchingClassifier : IAsyncDisposable
{
    private sealed record Job(float[] Input, OutputKind Kind, TaskCompletionSource<(float[], int)> Done, bool Record = true);

    private readonly Classifier _classifier;
    private readonly Channel<Job> _queue = Channel.CreateBounded<Job>(new BoundedChannelOptions(1024) { SingleReader = true });
    private readonly Task _worker;
    private readonly int _maxBatch;
    private readonly TimeSpan _maxDelay;

    public BatchingClassifier(Classifier classifier, int maxBatch = 16, TimeSpan? maxDelay = null)
    {
        _classifier = classifier;
        _maxBatch = Math.Max(1, maxBatch);
        _maxDelay = maxDelay ?? TimeSpan.FromMilliseconds(5);
        _worker = Task.Run(WorkAsync);
    }

    /// <summary>Batching in front of a two-tower model's image tower: /v1/zeroshot, /v1/embed-text and /v1/embed
    /// (the normalised image embedding) serve it; its text tower runs outside the worker (it has its own lock).</summary>
    public BatchingClassifier(ZeroShotModel twoTower, int maxBatch = 16, TimeSpan? maxDelay = null)
        : this(twoTower.Image, maxBatch, maxDelay) => TwoTower = twoTower;

    public Classifier Classifier => _classifier;

    /// <summary>The two-tower model whose image tower this batches, or null for a classifier checkpoint.</summary>
    public ZeroShotModel? TwoTower { get; }

    /// <summary>The output a two-tower model's image embedding comes from (CLIP: the visual projection as the head;
    /// SigLIP: the pooled features), as <see cref="ZeroShotModel.EmbedImages"/> runs it.</summary>
    public const OutputKind ImageEmbeddingKind = OutputKind.Logits;

    /// <summary>Where batch sizes and queue depth are recorded (the server sets its own; null: nowhere).</summary>
    public ServeMetrics? Metrics { get; set; }

    /// <summary>Images per forward pass at most.</summary>
    public int MaxBatch => _maxBatch;

    /// <summary>
    /// One full batch of blank images at the model's resolution through the worker, so the first client request does not
    /// pay for JIT compilation, weight packing and buffer allocation. Not recorded in <see cref="Metrics"/>.
    /// </summary>
    public async Task WarmUpAsync(CancellationToken ct = default)
    {
        int size = _classifier.Model.Config.ImageSize;
        var blank = Prepare(new Image(size, size, 3, new byte[size * size * 3]));
        var kind = TwoTower is not null ? ImageEmbeddingKind : _classifier.Model.Config.NumClasses == 0 ? OutputKind.Pooled : OutputKind.Logits;
        var jobs = Enumerable.Range(0, _maxBatch)
            .Select(_ => new Job(blank, kind, new TaskCompletionSource<(float[], int)>(TaskCreationOptions.RunContinuationsAsynchronously), Record: false))
            .ToList();
        foreach (var j in jobs) await _queue.Writer.WriteAsync(j, ct);
        await Task.WhenAll(jobs.Select(j => j.Done.Task)).WaitAsync(ct);
        if (TwoTower is { } t) await Task.Run(() => t.EmbedTexts(["a photo of a cat."]), ct);
    }

    /// <summary>Logits (or pooled features) of one image.</summary>
    public async Task<float[]> RunAsync(Image image, OutputKind kind, CancellationToken ct = default) =>
        (await RunWithBatchAsync(image, kind, ct)).Output;

    /// <summary>Logits (or pooled features) of one image, and how many images shared its forward pass.</summary>
    public Task<(float[] Output, int BatchSize)> RunWithBatchAsync(Image image, OutputKind kind, CancellationToken ct = default) =>
        RunPreparedAsync(Prepare(image), kind, ct);

    /// <summary>The classifier's eval transform of one image (CHW floats at the model's resolution), on the caller's
    /// thread: requests preprocess in parallel, and only model-sized inputs wait for the worker.</summary>
    public float[] Prepare(Image image) => _classifier.Recipe.Apply(image);

    /// <summary>Logits (or pooled features) of one <see cref="Prepare"/>d image, and how many images shared its forward pass.</summary>
    public async Task<(float[] Output, int BatchSize)> RunPreparedAsync(float[] input, OutputKind kind, CancellationToken ct = default)
    {
        var job = new Job(input, kind, new TaskCompletionSource<(float[], int)>(TaskCreationOptions.RunContinuationsAsynchronously));
        Metrics?.Queue(1);
        try { await _queue.Writer.WriteAsync(job, ct); }
        catch { Metrics?.Queue(-1); throw; }
        return await job.Done.Task.WaitAsync(ct);
    }

    private async Task WorkAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Job>();
        while (await reader.WaitToReadAsync())
        {
            batch.Clear();
            var deadline = DateTime.UtcNow + _maxDelay;
            while (batch.Count < _maxBatch)
            {
                if (reader.TryRead(out var job))
                {
                    batch.Add(job);
                    if (job.Record) Metrics?.Queue(-1);
                    continue;
                }
                var left = deadline - DateTime.UtcNow;
                if (batch.Count > 0 && left <= TimeSpan.Zero) break;
                using var cts = new CancellationTokenSource(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1));
                try { if (!await reader.WaitToReadAsync(cts.Token)) break; }
                catch (OperationCanceledException) { if (batch.Count > 0) break; }
            }
            foreach (var group in batch.GroupBy(j => j.Kind))
            {
                var jobs = group.ToList();
                try
                {
                    int per = jobs[0].Input.Length, size = _classifier.Recipe.ImageSize;
                    var stacked = new float[jobs.Count * per];
                    for (int i = 0; i < jobs.Count; i++) jobs[i].Input.CopyTo(stacked, i * per);
                    // The same numbers as Classifier.Run over these images: its batch is these transforms, stacked.
                    var result = _classifier.Model.Run(new HostArray([jobs.Count, per / (size * size), size, size], stacked), group.Key);
                    int recorded = jobs.Count(j => j.Record);
                    if (recorded > 0) Metrics?.Batch(jobs.Count);
                    int width = result.Shape[1];
                    for (int i = 0; i < jobs.Count; i++) jobs[i].Done.SetResult((result.Data.AsSpan(i * width, width).ToArray(), jobs.Count));
                }
                catch (Exception e)
                {
                    foreach (var j in jobs) j.Done.TrySetException(e);
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker;
    }
}
