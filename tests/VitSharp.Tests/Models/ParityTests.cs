using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;

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
