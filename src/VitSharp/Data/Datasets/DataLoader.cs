using System.Collections.Concurrent;

namespace VitSharp.Data.Datasets;

/// <summary>One batch on the host: images (Count, C, S, S) normalised, and labels.</summary>
public sealed record Batch(float[] Images, int[] Labels, int Count);

/// <summary>
/// Batches from a dataset, decoded and augmented on worker threads and prefetched while the model trains. Deterministic
/// for a seed: the epoch's order is a shuffle seeded by (seed, epoch), and every sample's augmentation RNG is seeded by
/// (seed, epoch, position), so neither thread timing nor resuming at a batch changes a single pixel.
/// One producer makes the batches in order; each batch's samples are spread over <see cref="Workers"/> threads
/// (0: <see cref="Environment.ProcessorCount"/>), and up to <see cref="Prefetch"/> finished batches wait in a queue.
/// A consumer that is done with a batch may hand it back with <see cref="Recycle"/>: its arrays are then reused for a
/// later batch instead of allocating 6 MB (CIFAR, 512) to 300 MB (224², 512) per batch.
/// </summary>
public sealed class DataLoader(IImageDataset dataset, int batchSize, Augmentation augmentation, bool shuffle, bool dropLast,
    int seed, int workers = 0, int prefetch = 2)
{
    private readonly ConcurrentBag<float[]> _images = [];
    private readonly ConcurrentBag<int[]> _labels = [];

    public IImageDataset Dataset => dataset;
    public int BatchSize => batchSize;
    /// <summary>Threads that decode and augment one batch's samples (the constructor's 0 or less: every core).</summary>
    public int Workers { get; } = workers > 0 ? workers : Environment.ProcessorCount;
    /// <summary>Finished batches that may wait ahead of the consumer (at least 1).</summary>
    public int Prefetch { get; } = Math.Max(1, prefetch);
    public Augmentation Augmentation => augmentation;

    /// <summary>Hands a batch back once the consumer no longer reads it (after copying it to a device, say); its arrays
    /// then hold a later batch. Batches not handed back are simply left to the GC. Never hand back a batch twice.</summary>
    public void Recycle(Batch batch)
    {
        int per = augmentation.Channels * augmentation.ImageSize * augmentation.ImageSize;
        // Only full-size arrays are kept, and no more than the queue can hold at once (bounded memory).
        if (batch.Images.Length != batchSize * per || batch.Labels.Length != batchSize || _images.Count > Prefetch + 2) return;
        _images.Add(batch.Images);
        _labels.Add(batch.Labels);
    }

    /// <summary>Data parallelism: this loader is rank <see cref="ShardRank"/> of <see cref="ShardCount"/>. Batch b of an
    /// epoch is then the rank's slice [ShardRank·B, (ShardRank+1)·B) of the global batch b of ShardCount·B samples, as a
    /// one-rank loader with batch ShardCount·B would make it (same order, same per-sample augmentation RNG, seeded by the
    /// global position): the ranks' batches are disjoint and together read every sample of the epoch's full global
    /// batches once. Needs drop_last (training).</summary>
    public int ShardRank { get; init; }
    /// <inheritdoc cref="ShardRank"/>
    public int ShardCount
    {
        get => _shards;
        init
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(ShardCount), "at least one shard");
            if (value > 1 && !dropLast) throw new ArgumentException("a sharded loader drops the last partial batch (training only)");
            _shards = value;
        }
    }
    private readonly int _shards = 1;

    public int BatchesPerEpoch => dropLast ? dataset.Count / (batchSize * ShardCount) : (dataset.Count + batchSize - 1) / batchSize;

    /// <summary>The dataset indices of this rank's batch <paramref name="bi"/> of <paramref name="epoch"/>.</summary>
    public int[] SampleIndices(int epoch, int bi)
    {
        var order = Order(epoch);
        int start = Start(bi);
        return order[start..Math.Min(start + batchSize, order.Length)];
    }

    private int Start(int bi)
    {
        if (ShardRank < 0 || ShardRank >= ShardCount) throw new InvalidOperationException($"shard {ShardRank} of {ShardCount}");
        return (bi * ShardCount + ShardRank) * batchSize;
    }

    public int[] Order(int epoch)
    {
        var order = Enumerable.Range(0, dataset.Count).ToArray();
        if (shuffle) new Random((int)(Mix((ulong)seed, (ulong)epoch, 0x5eed) & 0x7fffffff)).Shuffle(order);
        return order;
    }

    /// <summary>The batches of <paramref name="epoch"/> from batch <paramref name="startBatch"/> on.</summary>
    public IEnumerable<Batch> Epoch(int epoch, int startBatch = 0)
    {
        augmentation.Validate();
        var order = Order(epoch);
        int batches = BatchesPerEpoch;
        if (startBatch >= batches) yield break;
        using var queue = new BlockingCollection<Batch>(Prefetch);
        using var cts = new CancellationTokenSource();
        var producer = Task.Run(() =>
        {
            try
            {
                for (int bi = startBatch; bi < batches && !cts.IsCancellationRequested; bi++)
                    queue.Add(Make(order, epoch, bi), cts.Token);
            }
            catch (OperationCanceledException) { }
            finally { queue.CompleteAdding(); }
        });
        try
        {
            foreach (var b in queue.GetConsumingEnumerable()) yield return b;
        }
        finally
        {
            cts.Cancel();
            try { producer.Wait(); } catch (AggregateException) { } // rethrown below, unwrapped
        }
        // A worker's failure (a corrupt image, say) surfaces as the original exception, not nested AggregateExceptions.
        if (producer.Exception is { } ex)
        {
            Exception inner = ex;
            while (inner is AggregateException { InnerExceptions.Count: 1 } agg) inner = agg.InnerException!;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inner);
        }
    }

    private Batch Make(int[] order, int epoch, int bi)
    {
        int start = Start(bi), count = Math.Min(batchSize, order.Length - start);
        int per = augmentation.Channels * augmentation.ImageSize * augmentation.ImageSize;
        // Every element is overwritten, so a recycled array needs no clearing; a short last batch gets exact-size arrays.
        var images = count == batchSize && _images.TryTake(out var im) ? im : GC.AllocateUninitializedArray<float>(count * per);
        var labels = count == batchSize && _labels.TryTake(out var lb) ? lb : new int[count];
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Workers }, i =>
        {
            int idx = order[start + i];
            labels[i] = dataset.Label(idx);
            var rng = shuffle ? new Random((int)(Mix((ulong)seed, (ulong)epoch, (ulong)(start + i)) & 0x7fffffff)) : null;
            augmentation.Apply(dataset.Load(idx), rng, images.AsSpan(i * per, per));
        });
        return new Batch(images, labels, count);
    }

    /// <summary>SplitMix64 over three words: stable across processes (unlike HashCode.Combine).</summary>
    public static ulong Mix(ulong a, ulong b, ulong c)
    {
        ulong z = a * 0x9E3779B97F4A7C15UL ^ (b + 0x632BE59BD9B4E019UL) * 0xBF58476D1CE4E5B9UL ^ (c + 0x94D049BB133111EBUL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
