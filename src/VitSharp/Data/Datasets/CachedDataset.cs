using System.Diagnostics;

namespace VitSharp.Data.Datasets;

/// <summary>data.cache: decode once into memory (memory), never (none), or when the decoded size fits the bound (auto).</summary>
public enum CacheMode { Auto, Memory, None }

/// <summary>
/// A dataset decoded once into memory as 8-bit pixels (each image at its own size and channel count, as decoded), on
/// every core, so that each epoch reads pixels instead of decoding files. <see cref="Load"/> hands out the cached
/// pixels themselves (no copy): the augmentations never write into their input. Labels and class names are copied,
/// so the source dataset (and the encoded bytes it holds) can be collected.
/// </summary>
public sealed class CachedDataset : IImageDataset
{
    private readonly byte[][] _pixels;
    private readonly int[] _width, _height, _labels;
    private readonly byte[] _channels;

    private CachedDataset(byte[][] pixels, int[] width, int[] height, byte[] channels, int[] labels, IReadOnlyList<string> classes, TimeSpan time)
    {
        (_pixels, _width, _height, _channels, _labels, Classes, DecodeTime) = (pixels, width, height, channels, labels, classes, time);
        foreach (var p in pixels) Bytes += p.LongLength;
    }

    public int Count => _pixels.Length;
    public IReadOnlyList<string> Classes { get; }
    public int Label(int index) => _labels[index];
    public Image Load(int index) => new(_width[index], _height[index], _channels[index], _pixels[index]);
    /// <summary>Decoded bytes held (pixels only).</summary>
    public long Bytes { get; }
    /// <summary>Wall time of the one parallel decode.</summary>
    public TimeSpan DecodeTime { get; }

    /// <summary>The auto bound: a quarter of the memory the GC may use (physical memory or the container limit), at most
    /// 4 GiB. CIFAR-10 train (150 MB) and Imagenette at 224² (1.4 GB) fit; ImageNet-1k does not.</summary>
    public static long DefaultBoundBytes => Math.Min(4L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    /// <summary>Decodes every image of <paramref name="source"/> on <paramref name="workers"/> threads (0: every core).
    /// The first failure (a corrupt file) is rethrown as itself.</summary>
    public static CachedDataset Decode(IImageDataset source, int workers = 0)
    {
        int n = source.Count;
        var pixels = new byte[n][];
        var width = new int[n];
        var height = new int[n];
        var channels = new byte[n];
        var labels = new int[n];
        var sw = Stopwatch.StartNew();
        try
        {
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = workers > 0 ? workers : Environment.ProcessorCount }, i =>
            {
                var img = source.Load(i).To8Bit();
                (pixels[i], width[i], height[i], channels[i], labels[i]) = (img.Pixels!, img.Width, img.Height, (byte)img.Channels, source.Label(i));
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count >= 1)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        return new CachedDataset(pixels, width, height, channels, labels, source.Classes.ToArray(), sw.Elapsed);
    }

    /// <summary>Decoded size of the whole dataset, from up to <paramref name="samples"/> images spread evenly over it.</summary>
    public static long EstimateBytes(IImageDataset source, int samples = 32)
    {
        int n = source.Count, k = Math.Min(n, samples);
        if (k == 0) return 0;
        var bytes = new long[k];
        Parallel.For(0, k, i => bytes[i] = source.Load((int)((long)i * n / k)).To8Bit().Pixels!.LongLength);
        return (long)((double)bytes.Sum() / k * n);
    }

    /// <summary>
    /// <paramref name="source"/> cached per <paramref name="mode"/>: Memory always; Auto when <see cref="EstimateBytes"/>
    /// is within <paramref name="boundBytes"/> (default <see cref="DefaultBoundBytes"/>); None never. Data already in
    /// memory as pixels (idx files, a cache) is returned as it is.
    /// </summary>
    public static IImageDataset Apply(IImageDataset source, CacheMode mode, int workers = 0, long? boundBytes = null)
    {
        if (mode == CacheMode.None || source is CachedDataset or IdxDataset || source.Count == 0) return source;
        if (mode == CacheMode.Auto && EstimateBytes(source) > (boundBytes ?? DefaultBoundBytes)) return source;
        return Decode(source, workers);
    }

    /// <summary>"auto", "memory" or "none".</summary>
    public static CacheMode ParseMode(string? mode) => mode?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => CacheMode.Auto,
        "memory" => CacheMode.Memory,
        "none" => CacheMode.None,
        _ => throw new VitSharpException($"'{mode}' is not a cache mode (auto, memory, none)"),
    };
}
