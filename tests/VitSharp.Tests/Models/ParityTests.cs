using VitSharp.Data.Transforms;
using VitSharp.Models;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;

namespace VitSharp.Tests.Models;

/// <summary>fp32 CPU outputs against what timm / Hugging Face computed from the same weights and inputs.</summary>
public class ParityTests
{
    private const float LogitTol = 1e-4f, FeatureTol = 1e-4f;

    private static (HostArray logits, HostArray features) Run(string checkpoint, string inputFolder, LoadOptions options)
    {
        var ckpt = Checkpoint.Load(checkpoint, options);
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Npy.Read(Path.Combine(inputFolder, "input.npy"));
        return (model.Run(input), model.Run(input, OutputKind.Tokens));
    }

    private static void AssertClose(string folder, HostArray logits, HostArray? features)
    {
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(Path.Combine(folder, "logits.npy"))), 0, LogitTol);
        if (features is not null)
            Assert.InRange(TestData.MaxAbsDiff(features, Npy.Read(Path.Combine(folder, "features.npy"))), 0, FeatureTol);
    }

    public static IEnumerable<object[]> SmallFolders => [["vit_tiny48"], ["vit_tiny48_gap"], ["vit_tiny32_train"]];

    [Theory]
    [MemberData(nameof(SmallFolders))]
    public void TimmSafetensorsMatch(string name)
    {
        var dir = TestData.Small(name);
        var (l, f) = Run(Path.Combine(dir, "model.safetensors"), dir, new LoadOptions { Heads = TestData.Heads(dir) });
        AssertClose(dir, l, f);
    }

    [Theory]
    [InlineData("vit_tiny48")]
    [InlineData("vit_tiny32_train")]
    public void GoogleNpzMatches(string name)
    {
        var dir = TestData.Small(name);
        var (l, f) = Run(Path.Combine(dir, "model_google.npz"), dir, new LoadOptions());
        AssertClose(dir, l, f);
    }

    [Fact]
    public void HuggingFaceFolderMatches()
    {
        var dir = TestData.Small("vit_tiny48");
        var (l, _) = Run(Path.Combine(dir, "hf"), dir, new LoadOptions());
        AssertClose(Path.Combine(dir, "hf"), l, null); // hf/ has its own weights and logits, no features
    }

    [Fact]
    public void MixerMatches()
    {
        var dir = TestData.Small("mixer_tiny48");
        var (l, f) = Run(Path.Combine(dir, "model.safetensors"), dir, new LoadOptions());
        AssertClose(dir, l, f);
    }

    [Fact]
    public void HigherResolutionMatches()
    {
        var dir = TestData.Small("vit_tiny48_at80");
        var ckpt = Checkpoint.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2, ImageSize = 80 });
        var expected = Npy.Read(Path.Combine(dir, "pos_embed_resampled.npy"));
        Assert.InRange(TestData.MaxAbsDiff(ckpt.Weights["pos_embed"], expected), 0, 1e-5f);
        var (l, f) = Run(TestData.Small("vit_tiny48", "model.safetensors"), dir, new LoadOptions { Heads = 2, ImageSize = 80 });
        AssertClose(dir, l, f);
    }
}

public class CheckpointVariantTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-variant-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void NoEmbedClassCheckpointComputesTheSameModel()
    {
        // Fold the class token's position into the class token: timm's no_embed_class layout of the same function.
        var dir = TestData.Small("vit_tiny48");
        var w = SafeTensors.Read(Path.Combine(dir, "model.safetensors"));
        var pos = w["pos_embed"];
        int d = pos.Shape[2], t = pos.Shape[1];
        var cls = w["cls_token"].Data.Select((v, i) => v + pos.Data[i]).ToArray();
        w["cls_token"] = new HostArray([1, 1, d], cls);
        w["pos_embed"] = new HostArray([1, t - 1, d], pos.Data[d..]);
        var p = Path.Combine(_tmp, "noembed.safetensors");
        SafeTensors.Write(p, w);
        var ckpt = Checkpoint.Load(p, new LoadOptions { Heads = 2 });
        Assert.True(((VitConfig)ckpt.Config).NoEmbedClass);
        Assert.Equal(48, ckpt.Config.ImageSize);
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var logits = model.Run(Npy.Read(Path.Combine(dir, "input.npy")));
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(Path.Combine(dir, "logits.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void BilinearResamplingIsAvailableAndDiffersFromBicubic()
    {
        var path = TestData.Small("vit_tiny48", "model.safetensors");
        var bicubic = Checkpoint.Load(path, new LoadOptions { Heads = 2, ImageSize = 80 }).Weights["pos_embed"];
        var bilinear = Checkpoint.Load(path, new LoadOptions { Heads = 2, ImageSize = 80, PosEmbedInterpolation = Interpolation.Bilinear }).Weights["pos_embed"];
        Assert.Equal(bicubic.Shape, bilinear.Shape);
        Assert.Equal(bicubic.Data[..64], bilinear.Data[..64]); // class token kept aside in both
        Assert.True(TestData.MaxAbsDiff(bicubic, bilinear) > 1e-4f);
    }

    [Fact]
    public void ResamplingToTheSameGridIsIdentityAndNonSquareGridsWork()
    {
        var pos = new HostArray([1, 1 + 6, 2], Enumerable.Range(0, 14).Select(i => (float)i).ToArray());
        Assert.Same(pos, PositionEmbedding.Resample(pos, 1, (2, 3), (2, 3)));
        var up = PositionEmbedding.Resample(pos, 1, (2, 3), (4, 6), Interpolation.Bilinear);
        Assert.Equal([1, 1 + 24, 2], up.Shape);
        // A constant field stays constant under normalised interpolation weights.
        var flat = new HostArray([1, 6, 1], Enumerable.Repeat(0.5f, 6).ToArray());
        var r = PositionEmbedding.Resample(flat, 0, (2, 3), (5, 7));
        Assert.All(r.Data, v => Assert.Equal(0.5f, v, 6));
    }
}

public class TimmFolderTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-timmdir-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void TimmHubFolderGivesHeadsLabelsAndPreprocessing()
    {
        File.Copy(TestData.Small("vit_tiny48", "model.safetensors"), Path.Combine(_tmp, "model.safetensors"));
        var labels = string.Join(",", Enumerable.Range(0, 10).Select(i => $"\"class {i}\""));
        var pretrained = """{"input_size": [3, 48, 48], "interpolation": "bicubic", "crop_pct": 0.9, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}""";
        File.WriteAllText(Path.Combine(_tmp, "config.json"),
            "{\"architecture\": \"vit_tiny48\", \"num_classes\": 10, \"model_args\": {\"num_heads\": 2}, " +
            $"\"label_names\": [{labels}], \"pretrained_cfg\": {pretrained}}}");
        var ckpt = Checkpoint.Load(_tmp);
        Assert.Equal("timm-folder", ckpt.Format);
        Assert.Equal(2, ((VitConfig)ckpt.Config).NumHeads);
        Assert.Equal("class 3", ckpt.Labels![3]);
        Assert.Equal(0.9, (double)ckpt.PreprocessHints!["crop_pct"]!, 6);
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var logits = model.Run(Npy.Read(TestData.Small("vit_tiny48", "input.npy")));
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(TestData.Small("vit_tiny48", "logits.npy"))), 0, 1e-4f);
    }
}
