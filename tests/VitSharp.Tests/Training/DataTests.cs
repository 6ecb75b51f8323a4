using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;
using VitSharp.Data;
using VitSharp.Data.Codecs;
using VitSharp.Data.Datasets;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>Datasets (tar, tar.gz, folders, idx), the seeded loader, schedules and mixup targets.</summary>
public class DataTests
{
    private static Image Solid(byte value, int size = 8) => new(size, size, 3, Enumerable.Repeat(value, size * size * 3).ToArray());

    private static byte[] Png(Image img)
    {
        using var ms = new MemoryStream();
        new PngEncoder().Encode(img, ms);
        return ms.ToArray();
    }

    /// <summary>split/class/file.png entries; each image's gray level encodes its class and index.</summary>
    internal static string MakeArchive(bool gzip)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("vitsharp-tar-").FullName, gzip ? "d.tar.gz" : "d.tar");
        using (var f = File.Create(path))
        using (Stream s = gzip ? new GZipStream(f, CompressionLevel.Fastest) : f)
        using (var tar = new TarWriter(s))
        {
            foreach (var split in new[] { "train", "test" })
                foreach (var (cls, c) in new[] { ("cat", 0), ("dog", 1), ("emu", 2) })
                    for (int i = 0; i < 4; i++)
                        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"{split}/{cls}/{i:D4}.png") { DataStream = new MemoryStream(Png(Solid((byte)(c * 50 + i)))) });
        }
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ArchiveSplitsAndClasses(bool gzip)
    {
        var d = FileListDataset.Open(MakeArchive(gzip), "test", DataSources.Decoder);
        Assert.Equal(["cat", "dog", "emu"], d.Classes);
        Assert.Equal(12, d.Count);
        for (int i = 0; i < d.Count; i++) Assert.Equal(d.Label(i) * 50 + i % 4, d.Load(i).Pixels![0]);
    }

    [Fact]
    public void ImageFolderMatchesArchive()
    {
        var root = Directory.CreateTempSubdirectory("vitsharp-folder-").FullName;
        foreach (var (cls, c) in new[] { ("b", 1), ("a", 0) })
        {
            Directory.CreateDirectory(Path.Combine(root, "train", cls));
            for (int i = 0; i < 3; i++) File.WriteAllBytes(Path.Combine(root, "train", cls, $"{i}.png"), Png(Solid((byte)(c * 10 + i))));
        }
        var d = DataSources.Open(root, "train");
        Assert.Equal(["a", "b"], d.Classes);
        Assert.Equal([0, 0, 0, 1, 1, 1], Enumerable.Range(0, d.Count).Select(d.Label));
        Assert.Equal(12, d.Load(5).Pixels![0]);
    }

    [Fact]
    public void IdxGzReads()
    {
        var dir = Directory.CreateTempSubdirectory("vitsharp-idx-").FullName;
        var img = new byte[16 + 3 * 4];
        BinaryPrimitives.WriteInt32BigEndian(img, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(img.AsSpan(4), 3);
        BinaryPrimitives.WriteInt32BigEndian(img.AsSpan(8), 2);
        BinaryPrimitives.WriteInt32BigEndian(img.AsSpan(12), 2);
        for (int i = 0; i < 12; i++) img[16 + i] = (byte)i;
        var lab = new byte[] { 0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9 };
        void Gz(string name, byte[] data)
        {
            using var f = File.Create(Path.Combine(dir, name));
            using var g = new GZipStream(f, CompressionLevel.Fastest);
            g.Write(data);
        }
        Gz("t10k-images-idx3-ubyte.gz", img);
        Gz("t10k-labels-idx1-ubyte.gz", lab);
        var d = DataSources.Open(dir, "test");
        Assert.Equal(3, d.Count);
        Assert.Equal([7, 2, 9], Enumerable.Range(0, 3).Select(d.Label));
        Assert.Equal([8, 9, 10, 11], d.Load(2).Pixels);
    }

    [SharedFact]
    public void MnistTestSetReads()
    {
        var d = DataSources.Open(TestData.Shared("datasets", "mnist-t10k"), "test");
        Assert.Equal(10000, d.Count);
        Assert.Equal(10, d.Classes.Count);
        Assert.Equal([7, 2, 1, 0, 4], Enumerable.Range(0, 5).Select(d.Label)); // the well-known first test labels
        var img = d.Load(0);
        Assert.Equal((28, 28, 1), (img.Width, img.Height, img.Channels));
    }

    [Fact]
    public void LoaderIsDeterministicAndResumable()
    {
        var d = FileListDataset.Open(MakeArchive(false), "train", DataSources.Decoder);
        var aug = new Augmentation { ImageSize = 8, CropPadding = 2, HorizontalFlip = true };
        var a = new DataLoader(d, 4, aug, shuffle: true, dropLast: true, seed: 3, workers: 2);
        var b = new DataLoader(d, 4, aug, shuffle: true, dropLast: true, seed: 3, workers: 1);
        var all = a.Epoch(1).ToList();
        var tail = b.Epoch(1, startBatch: 1).ToList();
        Assert.Equal(3, all.Count);
        for (int i = 0; i < tail.Count; i++)
        {
            Assert.Equal(all[i + 1].Labels, tail[i].Labels);
            Assert.Equal(all[i + 1].Images, tail[i].Images);
        }
        Assert.NotEqual(a.Order(0), a.Order(1)); // a new shuffle every epoch
        var other = new DataLoader(d, 4, aug, shuffle: true, dropLast: true, seed: 4);
        Assert.NotEqual(a.Order(1), other.Order(1));
    }

    [Fact]
    public void CorruptImageFailsWithItsName()
    {
        var root = Directory.CreateTempSubdirectory("vitsharp-bad-").FullName;
        Directory.CreateDirectory(Path.Combine(root, "a"));
        File.WriteAllBytes(Path.Combine(root, "a", "good.png"), Png(Solid(1)));
        File.WriteAllBytes(Path.Combine(root, "a", "bad.png"), Png(Solid(2))[..40]); // truncated
        var loader = new DataLoader(DataSources.Open(root, null), 2, new Augmentation { ImageSize = 8 }, shuffle: true, dropLast: false, seed: 0);
        var e = Assert.ThrowsAny<VitSharpException>(() => loader.Epoch(0).ToList());
        Assert.Contains("bad.png", e.Message);
    }

    [Fact]
    public void WarmupThenCosineAndLinear()
    {
        var cos = new LrSchedule(1f, 110, 10);
        Assert.Equal(0.1f, cos.At(0), 6);
        Assert.Equal(1f, cos.At(9), 6);
        Assert.Equal(1f, cos.At(10), 6);
        Assert.Equal(0.5f, cos.At(60), 5);
        Assert.Equal(0f, cos.At(110), 6);
        var lin = new LrSchedule(2f, 20, 0, DecayKind.Linear, MinLr: 0.2f);
        Assert.Equal(1.1f, lin.At(10), 5);
    }

    [Fact]
    public void MixupTargetsAreDistributions()
    {
        var rng = new Random(1);
        var m = new Mixup(0.8f, 1.0f);
        for (int trial = 0; trial < 20; trial++)
        {
            var images = new float[4 * 3 * 8 * 8];
            for (int i = 0; i < images.Length; i++) images[i] = i / 3 % 4; // each sample distinct
            var t = m.Apply(images, 4, 3, 8, 8, [0, 1, 2, 3], 5, 0.1f, rng);
            for (int b = 0; b < 4; b++) Assert.Equal(1.0, t.Skip(b * 5).Take(5).Sum(), 5);
            Assert.Equal(t[0 * 5 + 3], t[3 * 5 + 0], 5); // sample 0 is mixed with sample 3, symmetrically
        }
    }

    [Fact]
    public void MixupMixesEachSampleWithItsMirrorExactly()
    {
        // 64 samples (the parallel path), labels distinct and no smoothing, so the targets give λ back exactly.
        const int B = 64, C = 3, H = 8, W = 8, K = 64, per = C * H * W;
        var m = new Mixup(0.8f, 1.0f);
        int mixups = 0, cutmixes = 0;
        for (int trial = 0; trial < 12; trial++)
        {
            var rng = new Random(100 + trial);
            var orig = new float[B * per];
            for (int i = 0; i < orig.Length; i++) orig[i] = (float)rng.NextDouble() - 0.5f;
            var images = (float[])orig.Clone();
            var labels = Enumerable.Range(0, B).ToArray();
            var t = m.Apply(images, B, C, H, W, labels, K, 0f, rng);
            float lam = t[0 * K + 0];
            Assert.Equal(1 - lam, t[0 * K + (B - 1)], 6);
            bool cut = true;
            for (int b = 0; b < B && cut; b++)
                for (int i = 0; i < per && cut; i++)
                    cut = images[b * per + i] == orig[b * per + i] || images[b * per + i] == orig[(B - 1 - b) * per + i];
            for (int b = 0; b < B; b++)
            {
                int taken = 0;
                for (int i = 0; i < per; i++)
                {
                    float own = orig[b * per + i], other = orig[(B - 1 - b) * per + i], got = images[b * per + i];
                    if (cut) taken += got == own ? 0 : 1;
                    else Assert.Equal(own * lam + other * (1 - lam), got); // bit for bit: the scalar formula
                }
                if (cut) Assert.Equal(1 - lam, taken / (float)(H * W * C), 5); // CutMix's λ is the area actually pasted
            }
            if (cut) cutmixes++; else mixups++;
        }
        Assert.True(mixups > 0 && cutmixes > 0, $"{mixups} mixups, {cutmixes} cutmixes");
    }

    [Fact]
    public void NoDecayFollowsTimm()
    {
        Assert.True(Optimizer.NoDecay("blocks.0.norm1.weight", [64]));
        Assert.True(Optimizer.NoDecay("head.bias", [10]));
        Assert.True(Optimizer.NoDecay("pos_embed", [1, 65, 64]));
        Assert.True(Optimizer.NoDecay("cls_token", [1, 1, 64]));
        Assert.False(Optimizer.NoDecay("blocks.0.attn.qkv.weight", [192, 64]));
        Assert.False(Optimizer.NoDecay("patch_embed.proj.weight", [64, 3, 4, 4]));
    }
}
