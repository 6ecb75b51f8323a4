using VitSharp.Data;
using VitSharp.Data.Datasets;
using VitSharp.Data.Transforms;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>The memory cache, RandAugment / TrivialAugment and their PIL-style ops, random erasing, data.* parsing.</summary>
public class AugmentTests
{
    private static Image Noise(int w, int h, int seed, int c = 3)
    {
        var px = new byte[w * h * c];
        new Random(seed).NextBytes(px);
        return new Image(w, h, c, px);
    }

    private static byte[] Run(AugmentOp op, double arg, Image img, AffineResample resample = AffineResample.Nearest, byte fill = 0)
    {
        var dst = new byte[img.Pixels!.Length];
        AutoAugment.Run(op, arg, img.Pixels, dst, img.Width, img.Height, img.Channels, resample, fill);
        return dst;
    }

    private static readonly Augmentation Heavy = new()
    {
        ImageSize = 8, CropPadding = 2, HorizontalFlip = true,
        AutoAugment = AutoAugment.Parse("rand-m9-mstd0.5-inc1"), RandomErasing = new RandomErasing(0.5),
    };

    [Fact]
    public void CacheGivesTheBatchesOfTheUncachedPath()
    {
        var d = FileListDataset.Open(DataTests.MakeArchive(true), "train", DataSources.Decoder);
        var cached = CachedDataset.Decode(d, workers: 2);
        Assert.Equal(d.Count, cached.Count);
        Assert.Equal(d.Classes, cached.Classes);
        Assert.Equal(d.Count * 8 * 8 * 3, cached.Bytes);
        var a = new DataLoader(d, 4, Heavy, shuffle: true, dropLast: true, seed: 5, workers: 1).Epoch(2).ToList();
        var b = new DataLoader(cached, 4, Heavy, shuffle: true, dropLast: true, seed: 5, workers: 2).Epoch(2).ToList();
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Labels, b[i].Labels);
            Assert.Equal(a[i].Images, b[i].Images);
        }
    }

    [Fact]
    public void CacheModes()
    {
        var d = FileListDataset.Open(DataTests.MakeArchive(false), "test", DataSources.Decoder);
        Assert.Same(d, CachedDataset.Apply(d, CacheMode.None));
        Assert.Same(d, CachedDataset.Apply(d, CacheMode.Auto, boundBytes: 100)); // 12 × 192 bytes do not fit 100
        Assert.IsType<CachedDataset>(CachedDataset.Apply(d, CacheMode.Auto));
        Assert.IsType<CachedDataset>(CachedDataset.Apply(d, CacheMode.Memory, boundBytes: 100));
        Assert.Equal(12 * 192, CachedDataset.EstimateBytes(d));
        var c = CachedDataset.Decode(d);
        Assert.Same(c, CachedDataset.Apply(c, CacheMode.Memory));
        for (int i = 0; i < d.Count; i++) Assert.Equal(d.Load(i).Pixels, c.Load(i).Pixels);
    }

    [Fact]
    public void RecycledBuffersHoldTheSameBatches()
    {
        var d = CachedDataset.Decode(FileListDataset.Open(DataTests.MakeArchive(false), "train", DataSources.Decoder));
        var fresh = new DataLoader(d, 4, Heavy, shuffle: true, dropLast: true, seed: 1).Epoch(0).Select(b => (float[])b.Images.Clone()).ToList();
        var loader = new DataLoader(d, 4, Heavy, shuffle: true, dropLast: true, seed: 1, workers: 0, prefetch: 1);
        Assert.Equal(Environment.ProcessorCount, loader.Workers);
        var seen = new HashSet<float[]>(ReferenceEqualityComparer.Instance);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            int i = 0;
            foreach (var b in loader.Epoch(0))
            {
                Assert.Equal(fresh[i++], b.Images);
                seen.Add(b.Images);
                loader.Recycle(b);
            }
        }
        Assert.True(seen.Count < 6, $"{seen.Count} arrays for 6 batches: nothing was reused");
    }

    [Fact]
    public void SimplePathKeepsItsArithmetic()
    {
        // The crop/flip/normalise loop before the 8-bit stage, inlined: every float must be the same.
        var img = Noise(8, 8, 3);
        var aug = new Augmentation { ImageSize = 8, CropPadding = 2, HorizontalFlip = true, Mean = [0.4f, 0.5f, 0.6f], Std = [0.2f, 0.25f, 0.3f] };
        var dst = new float[3 * 64];
        aug.Apply(img, new Random(9), dst);
        var rng = new Random(9);
        int ox = rng.Next(-2, 3), oy = rng.Next(-2, 3);
        bool flip = rng.Next(2) == 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                {
                    int sx = (flip ? 7 - x : x) + ox, sy = y + oy;
                    float v = sx < 0 || sy < 0 || sx >= 8 || sy >= 8 ? 0f : img.Pixels![(sy * 8 + sx) * 3 + c] / 255f;
                    Assert.Equal((v - aug.Mean[c]) * (1f / aug.Std[c]), dst[c * 64 + y * 8 + x]);
                }
    }

    [Theory]
    [InlineData("timm")]
    [InlineData("hf")]
    public void RecipePathMatchesTheRecipe(string name)
    {
        var r = PreprocessRecipe.Named(name, 16);
        var aug = new Augmentation { ImageSize = 16, Recipe = r, Mean = r.Mean, Std = r.Std };
        var dst = new float[3 * 256];
        for (int seed = 0; seed < 4; seed++)
        {
            var img = Noise(23 + seed, 19, seed);
            aug.Apply(img, new Random(seed), dst);
            Assert.Equal(r.ApplyTrain(img, new Random(seed)), dst);
            aug.ForEvaluation().Apply(img, null, dst);
            Assert.Equal(r.Apply(img), dst);
        }
    }

    [Theory]
    [InlineData(3, 2, 10, 7, 16, 16)] // up both ways
    [InlineData(0, 0, 23, 19, 8, 5)]  // down both ways
    [InlineData(4, 1, 16, 9, 16, 12)] // vertical pass only
    [InlineData(1, 3, 12, 16, 7, 16)] // horizontal pass only
    [InlineData(2, 2, 6, 6, 6, 6)]    // a plain crop
    public void ResizeOfABoxIsResizeOfTheCrop(int x0, int y0, int w, int h, int ow, int oh)
    {
        var img = Noise(23, 19, 8);
        foreach (var interp in new[] { Interpolation.Bicubic, Interpolation.Bilinear })
        {
            var dst = new byte[ow * oh * 3];
            Resize.PilInto(img, x0, y0, w, h, dst, ow, oh, interp);
            Assert.Equal(Resize.Pil(img.Crop(x0, y0, w, h), ow, oh, interp).Pixels, dst);
        }
    }

    [Theory]
    [InlineData("rand-m9-mstd0.5-inc1")]
    [InlineData("rand-m9-mstd0.5")]
    [InlineData("rand-m7-n3-mstd101-w0")]
    [InlineData("trivial")]
    public void PoliciesAreDeterministicForASeed(string spec)
    {
        var policy = AutoAugment.Parse(spec)!;
        var img = Noise(16, 16, 1);
        byte[] Once(int seed)
        {
            var a = (byte[])img.Pixels!.Clone();
            return (byte[])policy.Apply(a, new byte[a.Length], 16, 16, 3, new Random(seed)).Clone();
        }
        int changed = 0;
        for (int seed = 0; seed < 20; seed++)
        {
            Assert.Equal(Once(seed), Once(seed));
            if (!Once(seed).SequenceEqual(img.Pixels!)) changed++;
        }
        Assert.InRange(changed, 5, 20); // most draws change the image; some apply nothing (p 0.5, or Identity)
        var aug = new Augmentation { ImageSize = 16, AutoAugment = policy };
        float[] x = new float[768], y = new float[768];
        aug.Apply(img, new Random(3), x);
        aug.Apply(img, new Random(3), y);
        Assert.Equal(x, y);
    }

    [Fact]
    public void RandAugmentParsesTimmStrings()
    {
        var ra = Assert.IsType<RandAugment>(AutoAugment.Parse("rand-m9-mstd0.5-inc1"));
        Assert.Equal((9.0, 0.5, 2, 10.0), (ra.Magnitude, ra.MagnitudeStd, ra.NumOps, ra.MagnitudeMax));
        Assert.Equal(RandAugment.Increasing, ra.Ops);
        Assert.Equal(15, ra.Ops.Length);
        Assert.Null(ra.ChoiceWeights);
        var rb = Assert.IsType<RandAugment>(AutoAugment.Parse("rand-m7-n3-mmax12-mstd200-w0"));
        Assert.Equal((7.0, 3, 12.0), (rb.Magnitude, rb.NumOps, rb.MagnitudeMax));
        Assert.True(double.IsPositiveInfinity(rb.MagnitudeStd));
        Assert.Equal(RandAugment.Standard, rb.Ops);
        Assert.Equal(1.0, rb.ChoiceWeights!.Sum(), 12);
        Assert.Equal(10.0, Assert.IsType<RandAugment>(AutoAugment.Parse("rand")).Magnitude);
        Assert.Null(AutoAugment.Parse(null));
        Assert.Null(AutoAugment.Parse("none"));
        Assert.IsType<TrivialAugment>(AutoAugment.Parse("trivial"));
    }

    [Theory]
    [InlineData("auto_augment", "\"rand-m9-x3\"")]
    [InlineData("auto_augment", "\"rand-mfoo\"")]
    [InlineData("auto_augment", "\"randaug\"")]
    [InlineData("auto_augment", "\"augmix-m5\"")]
    [InlineData("cache", "\"disk\"")]
    [InlineData("random_erasing_mode", "\"noise\"")]
    [InlineData("random_erasing", "1.5")]
    [InlineData("prefetch", "0")]
    public void BadDataKeysFailWithTheKeyName(string key, string value)
    {
        var e = Assert.ThrowsAny<VitSharpException>(() => TrainConfig.Parse($"{{\"data\": {{\"{key}\": {value}}}}}"));
        Assert.Contains("data." + key, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void DataKeysParseAndBuildTheAugmentation()
    {
        var cfg = TrainConfig.Parse("""{"data": {"auto_augment": "rand-m9-mstd0.5-inc1", "random_erasing": 0.25, "cache": "none", "workers": 3, "prefetch": 4}}""");
        Assert.Equal(("none", 3, 4, 0.25f, "pixel"), (cfg.Data.Cache, cfg.Data.Workers, cfg.Data.Prefetch, cfg.Data.RandomErasing, cfg.Data.RandomErasingMode));
        var aug = TrainData.Augmentation(cfg.Data, 32, 3);
        Assert.Equal("rand-m9-mstd0.5-inc1", aug.AutoAugment!.Spec);
        Assert.Equal(new RandomErasing(0.25, ErasingMode.Pixel), aug.RandomErasing);
        Assert.Null(aug.ForEvaluation().AutoAugment);
        Assert.Null(aug.ForEvaluation().RandomErasing);
        var defaults = TrainConfig.Parse("{}").Data;
        Assert.Equal(("auto", 0, null as string, 0f), (defaults.Cache, defaults.Workers, defaults.AutoAugment, defaults.RandomErasing));
        var loader = TrainData.Loader(defaults, new Subset(Cifar0(), []), 8, TrainData.Augmentation(defaults, 8, 3), training: true, seed: 0);
        Assert.Equal(Environment.ProcessorCount, loader.Workers);
    }

    private static IImageDataset Cifar0() => FileListDataset.Open(DataTests.MakeArchive(false), "test", DataSources.Decoder);

    [Fact]
    public void PointOpsDoWhatTheySay()
    {
        var img = Noise(5, 4, 2);
        var p = img.Pixels!;
        Assert.Equal(p.Select(v => (byte)(255 - v)), Run(AugmentOp.Invert, 0, img));
        Assert.Equal(p.Select(v => v < 100 ? v : (byte)(255 - v)), Run(AugmentOp.Solarize, 100, img));
        Assert.Equal(p, Run(AugmentOp.Solarize, 256, img));
        Assert.Equal(p.Select(v => (byte)(v & 0xE0)), Run(AugmentOp.Posterize, 3, img));
        Assert.Equal(p, Run(AugmentOp.Posterize, 8, img));
        Assert.Equal(p.Select(v => v < 128 ? (byte)Math.Min(255, v + 60) : v), Run(AugmentOp.SolarizeAdd, 60, img));
        foreach (var op in new[] { AugmentOp.Brightness, AugmentOp.Color, AugmentOp.Contrast, AugmentOp.Sharpness })
            Assert.Equal(p, Run(op, 1.0, img)); // factor 1 is the image itself
        Assert.All(Run(AugmentOp.Brightness, 0, img), v => Assert.Equal(0, v));
        var gray = Run(AugmentOp.Color, 0, img);
        for (int i = 0; i < gray.Length; i += 3)
        {
            Assert.Equal(PilOps.Gray(p[i], p[i + 1], p[i + 2]), gray[i]);
            Assert.Equal(gray[i], gray[i + 2]);
        }
        Assert.Single(Run(AugmentOp.Contrast, 0, img).Distinct()); // all the gray mean
    }

    [Fact]
    public void AutoContrastAndEqualizeStretchLevels()
    {
        var img = new Image(2, 2, 1, [50, 60, 80, 100]);
        // int(i·255/50 − 50·255/50) in double, as ImageOps builds its LUT: the top level lands on 254.999… → 254.
        Assert.Equal([0, 51, 153, 254], Run(AugmentOp.AutoContrast, 0, img));
        var flat = new Image(2, 1, 1, [7, 7]);
        Assert.Equal([7, 7], Run(AugmentOp.AutoContrast, 0, flat));
        Assert.Equal([7, 7], Run(AugmentOp.Equalize, 0, flat));
        // ImageOps.equalize on [10, 10, 200, 200]: step = (4 − 2) // 255 = 0 → identity; on 600 pixels it spreads.
        Assert.Equal([10, 10, 200, 200], Run(AugmentOp.Equalize, 0, new Image(2, 2, 1, [10, 10, 200, 200])));
        // Three levels of 255 pixels each: step = (765 − 255) // 255 = 2, n starts at 1: LUT 1//2, 256//2, 511//2.
        var many = new Image(45, 17, 1, Enumerable.Range(0, 765).Select(i => (byte)(i < 255 ? 10 : i < 510 ? 90 : 200)).ToArray());
        var eq = Run(AugmentOp.Equalize, 0, many);
        Assert.Equal([0, 128, 255], new[] { eq[0], eq[300], eq[764] });
    }

    [Fact]
    public void RotateBy90MatchesATransposeWithBothFilters()
    {
        var img = Noise(6, 6, 4);
        var p = img.Pixels!;
        foreach (var resample in new[] { AffineResample.Nearest, AffineResample.Bilinear })
        {
            var r = Run(AugmentOp.Rotate, 90, img, resample);
            // Counter-clockwise: output (x, y) is input (column 5 − y, row x).
            for (int y = 0; y < 6; y++)
                for (int x = 0; x < 6; x++)
                    for (int c = 0; c < 3; c++)
                        Assert.Equal(p[(x * 6 + (5 - y)) * 3 + c], r[(y * 6 + x) * 3 + c]);
            Assert.Equal(p, Run(AugmentOp.Rotate, 0, img, resample));
            Assert.Equal(p, Run(AugmentOp.Rotate, 360, img, resample));
        }
    }

    [Fact]
    public void AffineOpsKeepConstantsAndFill()
    {
        var flat = new Image(9, 7, 3, Enumerable.Repeat((byte)77, 9 * 7 * 3).ToArray());
        foreach (var resample in new[] { AffineResample.Nearest, AffineResample.Bilinear })
        {
            Assert.All(Run(AugmentOp.ShearX, 0.27, flat, resample, fill: 77), v => Assert.Equal(77, v));
            Assert.All(Run(AugmentOp.ShearY, -0.3, flat, resample, fill: 77), v => Assert.Equal(77, v));
            Assert.All(Run(AugmentOp.Rotate, 23.5, flat, resample, fill: 77), v => Assert.Equal(77, v));
        }
        var img = Noise(8, 8, 5);
        Assert.Equal(img.Pixels, Run(AugmentOp.ShearX, 0, img, AffineResample.Bilinear));
        Assert.Equal(img.Pixels, Run(AugmentOp.TranslateX, 0, img, AffineResample.Bilinear));
        // Translate by 3 px (PIL's offset c = 3: output x shows input x + 3); the last 3 columns are fill.
        var t = Run(AugmentOp.TranslateX, 3, img, AffineResample.Nearest, fill: 128);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                Assert.Equal(x + 3 < 8 ? img.Pixels![(y * 8 + x + 3) * 3] : 128, t[(y * 8 + x) * 3]);
        Assert.Equal(t, Run(AugmentOp.TranslateX, 3, img, AffineResample.Bilinear, fill: 128)); // whole pixels: same
        // A shear of 0.3 moves row y by 0.3·(y + ½) pixels: the top row samples x + 0.15, the bottom x + 2.25.
        var s = Run(AugmentOp.ShearX, 0.3, img, AffineResample.Nearest, fill: 0);
        Assert.Equal(img.Pixels![(7 * 8 + 2) * 3], s[(7 * 8 + 0) * 3]);
        Assert.Equal(img.Pixels![0], s[0]);
    }

    [Fact]
    public void MagnitudeZeroIsIdentityWhereTimmSaysSo()
    {
        var ra = new RandAugment();
        var img = Noise(8, 8, 6);
        foreach (var op in new[]
                 {
                     RandAugment.Op.Rotate, RandAugment.Op.ShearX, RandAugment.Op.ShearY, RandAugment.Op.TranslateXRel,
                     RandAugment.Op.TranslateYRel, RandAugment.Op.SolarizeIncreasing, RandAugment.Op.SolarizeAdd,
                     RandAugment.Op.ColorIncreasing, RandAugment.Op.ContrastIncreasing, RandAugment.Op.BrightnessIncreasing,
                     RandAugment.Op.SharpnessIncreasing,
                 })
        {
            var (o, arg) = ra.Level(op, 0, 8, 8, new Random(1));
            Assert.Equal(img.Pixels, Run(o, arg, img, AffineResample.Bilinear, 128));
        }
        // timm's level ranges at magnitude 10.
        Assert.Equal(30, Math.Abs(ra.Level(RandAugment.Op.Rotate, 10, 8, 8, new Random(1)).Arg));
        Assert.Equal(0.3, Math.Abs(ra.Level(RandAugment.Op.ShearX, 10, 8, 8, new Random(1)).Arg), 12);
        Assert.Equal(0.45 * 8, Math.Abs(ra.Level(RandAugment.Op.TranslateXRel, 10, 8, 8, new Random(1)).Arg), 12);
        Assert.Equal((AugmentOp.Posterize, 0.0), ra.Level(RandAugment.Op.PosterizeIncreasing, 10, 8, 8, new Random(1)));
        Assert.Equal((AugmentOp.Posterize, 1.0), ra.Level(RandAugment.Op.PosterizeIncreasing, 9, 8, 8, new Random(1)));
        Assert.Equal((AugmentOp.Solarize, 26.0), ra.Level(RandAugment.Op.SolarizeIncreasing, 9, 8, 8, new Random(1)));
        Assert.Equal((AugmentOp.SolarizeAdd, 99.0), ra.Level(RandAugment.Op.SolarizeAdd, 9, 8, 8, new Random(1)));
        Assert.Equal(1.72, ra.Level(RandAugment.Op.Color, 9, 8, 8, new Random(1)).Arg, 12);
        Assert.InRange(Math.Abs(ra.Level(RandAugment.Op.ColorIncreasing, 10, 8, 8, new Random(1)).Arg - 1), 0.9 - 1e-12, 0.9 + 1e-12);
        // TrivialAugment's bins: 31 from 0, ends where torchvision puts them.
        Assert.Equal(0, TrivialAugment.MagnitudeAt(AugmentOp.Rotate, 0));
        Assert.Equal(135, TrivialAugment.MagnitudeAt(AugmentOp.Rotate, 30), 4);
        Assert.Equal(8, TrivialAugment.MagnitudeAt(AugmentOp.Posterize, 0));
        Assert.Equal(2, TrivialAugment.MagnitudeAt(AugmentOp.Posterize, 30));
        Assert.Equal(255, TrivialAugment.MagnitudeAt(AugmentOp.Solarize, 0));
        Assert.Equal(14, TrivialAugment.Ops.Count);
    }

    [Fact]
    public void RandomErasingErasesOneBox()
    {
        var chw = Enumerable.Repeat(5f, 3 * 16 * 16).ToArray();
        new RandomErasing(0).Apply(chw, 3, 16, 16, new Random(1));
        Assert.All(chw, v => Assert.Equal(5f, v));
        new RandomErasing(1, ErasingMode.Const).Apply(chw, 3, 16, 16, new Random(1));
        int zeros = chw.Count(v => v == 0);
        Assert.InRange(zeros, 3 * 5, 3 * 256 / 3 + 3 * 16); // 2–33 % of the area (sides rounded), in every channel
        Assert.Equal(0, zeros % 3);
        var a = Enumerable.Repeat(5f, 3 * 16 * 16).ToArray();
        var b = (float[])a.Clone();
        new RandomErasing(1).Apply(a, 3, 16, 16, new Random(2));
        new RandomErasing(1).Apply(b, 3, 16, 16, new Random(2));
        Assert.Equal(a, b);
        Assert.Contains(a, v => v != 5f);
    }
}
