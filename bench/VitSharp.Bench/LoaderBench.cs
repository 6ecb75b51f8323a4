using System.Diagnostics;
using System.Globalization;
using VitSharp.Data.Datasets;
using VitSharp.Data.Transforms;

namespace VitSharp.Bench;

/// <summary>
/// The training data path: archive read, the one parallel decode into the memory cache, then epochs of shuffled,
/// augmented, normalised batches (crop+flip or a recipe's random resized crop; then the same with RandAugment and with
/// TrivialAugment), batches handed back with Recycle as a trainer would. No peer is measured.
/// Usage: loader --data PATH [--split train] [--size 32] [--batch 512] [--epochs 2] [--workers N] [--cache auto|memory|none]
///        [--auto-augment rand-m9-mstd0.5-inc1] [--recipe timm] [--crop-padding 4] [--random-erasing 0.25] [--limit N]
/// </summary>
public sealed class LoaderBench : IBench
{
    public string Name => "loader";
    public string Description => "decode-once cache time and loader images/s, plain / RandAugment / TrivialAugment";

    public int Run(string[] args)
    {
        string? data = null, split = "train", cache = "auto", recipe = null, aa = "rand-m9-mstd0.5-inc1";
        int size = 32, batch = 512, epochs = 2, workers = 0, limit = 0, padding = -1;
        double erasing = 0;
        for (int i = 0; i < args.Length - 1; i++)
        {
            string v = args[i + 1];
            switch (args[i])
            {
                case "--data": data = v; break;
                case "--split": split = v is "" or "none" ? null : v; break;
                case "--size": size = int.Parse(v, CultureInfo.InvariantCulture); break;
                case "--batch": batch = int.Parse(v, CultureInfo.InvariantCulture); break;
                case "--epochs": epochs = int.Parse(v, CultureInfo.InvariantCulture); break;
                case "--workers": workers = int.Parse(v, CultureInfo.InvariantCulture); break;
                case "--cache": cache = v; break;
                case "--auto-augment": aa = v; break;
                case "--recipe": recipe = v; break;
                case "--crop-padding": padding = int.Parse(v, CultureInfo.InvariantCulture); break;
                case "--random-erasing": erasing = double.Parse(v, CultureInfo.InvariantCulture); break;
                case "--limit": limit = int.Parse(v, CultureInfo.InvariantCulture); break;
            }
        }
        if (data is null) { Console.WriteLine("loader: --data PATH (an image folder or .tar/.tar.gz) is required"); return 2; }
        Console.WriteLine($"{Environment.ProcessorCount} logical cores; workers {(workers > 0 ? workers : Environment.ProcessorCount)}; " +
                          $"batch {batch}; {size}x{size}; GC {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}");

        var sw = Stopwatch.StartNew();
        IImageDataset d = DataSources.Open(data, split);
        Console.WriteLine($"open      : {d.Count} images, {d.Classes.Count} classes in {sw.Elapsed.TotalSeconds:F2} s (archive read and index, one thread)");
        if (limit > 0 && limit < d.Count)
        {
            int n = d.Count;
            d = new Subset(d, Enumerable.Range(0, limit).Select(i => (int)((long)i * n / limit)).ToArray());
            Console.WriteLine($"limit     : {limit} images spread over the set");
        }
        var mode = CachedDataset.ParseMode(cache);
        sw.Restart();
        long estimate = mode == CacheMode.Auto ? CachedDataset.EstimateBytes(d) : 0;
        var cached = CachedDataset.Apply(d, mode, workers);
        if (cached is CachedDataset c)
            Console.WriteLine($"cache     : decoded once in {c.DecodeTime.TotalSeconds:F2} s = {c.Count / c.DecodeTime.TotalSeconds:F0} images/s; " +
                              $"{c.Bytes / 1e6:F1} MB of pixels (bound {CachedDataset.DefaultBoundBytes / (double)(1L << 30):F1} GiB" +
                              (mode == CacheMode.Auto ? $", estimate {estimate / 1e6:F1} MB)" : ")"));
        else Console.WriteLine($"cache     : none ({cache}{(mode == CacheMode.Auto ? $", estimate {estimate / 1e6:F0} MB over the bound" : "")}); every epoch decodes");

        var baseAug = new Augmentation
        {
            ImageSize = size, Channels = 3, CropPadding = padding >= 0 ? padding : size <= 64 ? 4 : 0, HorizontalFlip = true,
            RandomErasing = erasing > 0 ? new RandomErasing(erasing) : null,
        };
        if (recipe is not null)
        {
            var r = PreprocessRecipe.Named(recipe, size);
            baseAug = baseAug with { Recipe = r, Mean = r.Mean, Std = r.Std };
        }
        string geometry = recipe is null ? $"crop(pad {baseAug.CropPadding})+flip" : $"{recipe} random-resized-crop+flip";
        var runs = new List<(string Name, Augmentation Aug)> { (geometry, baseAug) };
        if (AutoAugment.Parse(aa) is { } policy) runs.Add(($"{geometry} + {policy.Spec}", baseAug with { AutoAugment = policy }));
        runs.Add(($"{geometry} + trivial", baseAug with { AutoAugment = new TrivialAugment() }));
        Stages(cached, size, baseAug);
        foreach (var (name, aug) in runs)
        {
            var loader = new DataLoader(cached, batch, aug, shuffle: true, dropLast: true, seed: 0, workers, prefetch: 3);
            var rates = new List<double>();
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            long total = 0;
            int gen0 = GC.CollectionCount(0), gen2 = GC.CollectionCount(2);
            long alloc = GC.GetTotalAllocatedBytes();
            var pause = GC.GetTotalPauseDuration();
            for (int e = 0; e < epochs; e++)
            {
                sw.Restart();
                long images = 0;
                foreach (var b in loader.Epoch(e))
                {
                    images += b.Count;
                    loader.Recycle(b);
                }
                rates.Add(images / sw.Elapsed.TotalSeconds);
                total += images;
            }
            double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            long perEpoch = (GC.GetTotalAllocatedBytes() - alloc) / epochs;
            Console.WriteLine($"epochs    : {name,-48} {string.Join("  ", rates.Select(r => $"{r,7:F0}"))} images/s " +
                              $"(best {rates.Max():F0}; {total / cpu:F0} per CPU-second); {perEpoch / 1e6:F0} MB allocated/epoch, GCs gen0 {GC.CollectionCount(0) - gen0} gen2 {GC.CollectionCount(2) - gen2}, " +
                              $"paused {(GC.GetTotalPauseDuration() - pause).TotalSeconds / epochs:F2} s/epoch");
        }
        return 0;
    }

    /// <summary>One thread, 200 images, best of 4 passes: µs per image of each stage, to see where the time goes.</summary>
    static void Stages(IImageDataset d, int size, Augmentation aug)
    {
        int n = Math.Min(200, d.Count);
        var imgs = Enumerable.Range(0, n).Select(d.Load).ToArray();
        var dst = new float[3 * size * size];
        double Time(Action<int> body)
        {
            double best = double.MaxValue; // the best of 4 passes: the first runs unoptimised (tier-0) code
            for (int pass = 0; pass < 4; pass++)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < n; i++) body(i);
                best = Math.Min(best, sw.Elapsed.TotalMilliseconds * 1000 / n);
            }
            return best;
        }
        double load = Time(i => d.Load(i));
        double plain = Time(i => aug.Apply(imgs[i], new Random(i), dst));
        var ra = aug with { AutoAugment = AutoAugment.Parse("rand-m9-mstd0.5-inc1") };
        double rand = Time(i => ra.Apply(imgs[i], new Random(i), dst));
        var ta = aug with { AutoAugment = new TrivialAugment() };
        double trivial = Time(i => ta.Apply(imgs[i], new Random(i), dst));
        Console.WriteLine($"stages    : one thread, µs/image: load {load:F0} (decode when uncached), geometry+normalise {plain:F0}, " +
                          $"with RandAugment {rand:F0}, with TrivialAugment {trivial:F0}");
        var src = new byte[3 * size * size];
        var dstB = new byte[src.Length];
        new Random(1).NextBytes(src);
        var ops = new (AugmentOp Op, double Arg)[]
        {
            (AugmentOp.AutoContrast, 0), (AugmentOp.Equalize, 0), (AugmentOp.Invert, 0), (AugmentOp.Posterize, 2), (AugmentOp.Solarize, 128),
            (AugmentOp.SolarizeAdd, 50), (AugmentOp.Color, 1.5), (AugmentOp.Contrast, 1.5), (AugmentOp.Brightness, 1.5), (AugmentOp.Sharpness, 1.5),
            (AugmentOp.Rotate, 17), (AugmentOp.ShearX, 0.2), (AugmentOp.ShearY, 0.2), (AugmentOp.TranslateX, size * 0.3),
        };
        var parts = new List<string>();
        foreach (var (op, arg) in ops)
            foreach (var resample in op is AugmentOp.Rotate or AugmentOp.ShearX or AugmentOp.ShearY or AugmentOp.TranslateX
                         ? new[] { AffineResample.Bilinear, AffineResample.Nearest } : [AffineResample.Bilinear])
            {
                double us = Time(_ => AutoAugment.Run(op, arg, src, dstB, size, size, 3, resample, 128));
                parts.Add($"{op}{(resample == AffineResample.Nearest ? "/nearest" : "")} {us:F0}");
            }
        Console.WriteLine($"ops       : one thread, µs/image: {string.Join(", ", parts)}");
    }
}
