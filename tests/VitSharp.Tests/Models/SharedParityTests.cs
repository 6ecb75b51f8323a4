using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;

namespace VitSharp.Tests.Models;

/// <summary>The full-size reference folders of ../shared/refs (skipped where the checkout has no ../shared).</summary>
public class SharedParityTests
{
    private static void Check(string checkpoint, string folder, LoadOptions options, bool features = true)
    {
        var ckpt = Checkpoint.Load(checkpoint, options);
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Npy.Read(Path.Combine(folder, "input.npy"));
        Assert.InRange(TestData.MaxAbsDiff(model.Run(input), Npy.Read(Path.Combine(folder, "logits.npy"))), 0, 1e-4f);
        if (features)
            Assert.InRange(TestData.MaxAbsDiff(model.Run(input, OutputKind.Tokens), Npy.Read(Path.Combine(folder, "features.npy"))), 0, 1e-4f);
    }

    [SharedTheory]
    [InlineData("vit_s16_d3", "model.safetensors")]
    [InlineData("vit_s16_d3", "model_google.npz")]
    [InlineData("vit_p4_train", "model.safetensors")]
    [InlineData("vit_p4_train", "model_google.npz")]
    [InlineData("mixer_s16_d2", "model.safetensors")]
    public void ReferenceFolderMatches(string name, string file)
    {
        var dir = TestData.Shared("refs", name);
        var heads = name.StartsWith("vit") ? TestData.Heads(dir) : (int?)null;
        Check(Path.Combine(dir, file), dir, new LoadOptions { Heads = heads });
    }

    [SharedFact]
    public void HuggingFaceFolderMatches()
    {
        var dir = TestData.Shared("refs", "vit_s16_d3");
        var ckpt = Checkpoint.Load(Path.Combine(dir, "hf"));
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var logits = model.Run(Npy.Read(Path.Combine(dir, "input.npy")));
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(Path.Combine(dir, "hf", "logits.npy"))), 0, 1e-4f);
    }

    [SharedFact]
    public void RunsAt384WithResampledPositionEmbedding()
    {
        var dir = TestData.Shared("refs", "vit_s16_d3_at384");
        var weights = TestData.Shared("refs", "vit_s16_d3", "model.safetensors");
        var options = new LoadOptions { Heads = 3, ImageSize = 384 };
        var ckpt = Checkpoint.Load(weights, options);
        Assert.InRange(TestData.MaxAbsDiff(ckpt.Weights["pos_embed"], Npy.Read(Path.Combine(dir, "pos_embed_resampled.npy"))), 0, 1e-5f);
        Check(weights, dir, options);
    }
}
