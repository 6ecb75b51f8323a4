using VitSharp.Checkpoints;
using VitSharp.Data.Codecs;
using VitSharp.Data.Transforms;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tests.Cli;

namespace VitSharp.Tests.Inference;

/// <summary>Image file → preprocessing → logits, against timm's eval transform and Hugging Face's ViTImageProcessor
/// run on the same files and weights (bench/peers/make_classify_refs.py).</summary>
[Collection("cli")]
public class ClassifierTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-classify-").FullName;
    private static string Data(params string[] p) => Path.Combine([AppContext.BaseDirectory, "Data", .. p]);
    private static readonly string[] Images = [Data("images", "chelsea_crop128x96.png"), Data("images", "fuzz", "progressive422.jpg")];

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void TimmCheckpointUsesTimmPreprocessingAndMatchesTimm()
    {
        using var c = Classifier.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2 });
        Assert.Equal("timm", c.Recipe.Name);
        var decoded = Images.Select(p => ImageCodecs.Decode(p)).ToList();
        var input = Npy.Read(Data("classify", "timm_input.npy"));
        var ours = c.Recipe.ApplyBatch(decoded);
        Assert.InRange(TestData.MaxAbsDiff(new HostArray(ours.Shape, ours.ToArray()), input), 0, 1e-5f);
        Assert.InRange(TestData.MaxAbsDiff(c.Run(decoded, OutputKind.Logits), Npy.Read(Data("classify", "timm_logits.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void HuggingFaceFolderUsesItsProcessorAndMatchesTransformers()
    {
        using var c = Classifier.Load(TestData.Small("vit_tiny48", "hf"));
        Assert.Equal("hf", c.Recipe.Name);
        var decoded = Images.Select(p => ImageCodecs.Decode(p)).ToList();
        Assert.InRange(TestData.MaxAbsDiff(c.Run(decoded, OutputKind.Logits), Npy.Read(Data("classify", "hf_logits.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void ClassifyCommandPrintsLabelsFromAFileAndRunAcceptsImages()
    {
        var labels = Path.Combine(_tmp, "labels.json");
        File.WriteAllText(labels, "[" + string.Join(",", Enumerable.Range(0, 10).Select(i => $"\"thing {i}\"")) + "]");
        var ckpt = TestData.Small("vit_tiny48", "model.safetensors");
        var (code, stdout, err) = CliRunner.Run("classify", "--checkpoint", ckpt, "--heads", "2", "--labels", labels, "--top-k", "3", "--json", Images[0]);
        Assert.True(code == 0, err);
        var top = System.Text.Json.Nodes.JsonNode.Parse(stdout)![0]!["top"]!.AsArray();
        Assert.Equal(3, top.Count);
        var expected = Npy.Read(Data("classify", "timm_logits.npy")).Data[..10];
        int best = Array.IndexOf(expected, expected.Max());
        Assert.Equal(best, (int)top[0]!["index"]!);
        Assert.Equal($"thing {best}", (string?)top[0]!["label"]);
        double total = Math.Exp(expected.Max()) / expected.Sum(v => Math.Exp(v));
        Assert.Equal(total, (double)top[0]!["probability"]!, 4);

        var output = Path.Combine(_tmp, "y.npy");
        (code, _, err) = CliRunner.Run("run", "--checkpoint", ckpt, "--heads", "2", "--input", Images[0], "--output", output);
        Assert.True(code == 0, err);
        Assert.Equal(expected, Npy.Read(output).Data, (a, b) => Math.Abs(a - b) < 1e-4f);
    }

    [Fact]
    public void NamedRecipeOverridesAndBadImagesFailCleanly()
    {
        var ckpt = TestData.Small("vit_tiny48", "model.safetensors");
        var notImage = Path.Combine(_tmp, "notes.jpg");
        File.WriteAllText(notImage, "not a jpeg");
        var (code, _, err) = CliRunner.Run("classify", "--checkpoint", ckpt, "--heads", "2", notImage);
        Assert.Equal(1, code);
        Assert.Contains("notes.jpg", err);
        (code, _, err) = CliRunner.Run("classify", "--checkpoint", ckpt, "--heads", "2", "--recipe", "nonsense", Images[0]);
        Assert.Equal(1, code);
        Assert.Contains("nonsense", err);
        using var c = Classifier.Load(ckpt, new LoadOptions { Heads = 2 }, recipe: PreprocessRecipe.Google());
        Assert.Equal("google", c.Recipe.Name);
        Assert.Equal(48, c.Recipe.ImageSize); // the recipe follows the model's resolution
    }

    [Fact]
    public void ImageNetLabelsAreBuiltIn()
    {
        Assert.Equal(1000, Labels.ImageNet.Length);
        Assert.Equal("tench", Labels.ImageNet[0]);
        Assert.Equal("toilet paper", Labels.ImageNet[999]);
    }
}
