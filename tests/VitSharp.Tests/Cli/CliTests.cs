using System.Text.Json.Nodes;
using VitSharp.Checkpoints;

namespace VitSharp.Tests.Cli;

[Collection("cli")]
public class CliTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-cli-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void RunWritesLogitsMatchingTimm()
    {
        var dir = TestData.Small("vit_tiny48");
        var output = Path.Combine(_tmp, "logits.npy");
        var (code, _, err) = CliRunner.Run("run", "--checkpoint", Path.Combine(dir, "model.safetensors"), "--heads", "2",
            "--input", Path.Combine(dir, "input.npy"), "--output", output);
        Assert.True(code == 0, err);
        Assert.InRange(TestData.MaxAbsDiff(Npy.Read(output), Npy.Read(Path.Combine(dir, "logits.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void RunWritesFeaturesAtAnotherResolution()
    {
        var dir = TestData.Small("vit_tiny48_at80");
        var output = Path.Combine(_tmp, "features.npy");
        var (code, _, err) = CliRunner.Run("run", "--checkpoint", TestData.Small("vit_tiny48", "model_google.npz"),
            "--img-size", "80", "--features", "--input", Path.Combine(dir, "input.npy"), "--output", output);
        Assert.True(code == 0, err);
        Assert.InRange(TestData.MaxAbsDiff(Npy.Read(output), Npy.Read(Path.Combine(dir, "features.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void InfoPrintsInferredConfigAsJson()
    {
        var (code, stdout, err) = CliRunner.Run("info", "--checkpoint", TestData.Small("vit_tiny48", "hf"));
        Assert.True(code == 0, err);
        var json = JsonNode.Parse(stdout)!;
        Assert.Equal("huggingface", (string?)json["format"]);
        Assert.Equal(2, (int)json["config"]!["num_heads"]!);
        Assert.Equal(64, (int)json["config"]!["embed_dim"]!);
        Assert.Equal(256, (int)json["config"]!["mlp_dim"]!);
        Assert.Equal(1e-12, (double)json["config"]!["layer_norm_eps"]!, 1e-15);
        var weights = SafeTensors.Read(TestData.Small("vit_tiny48", "hf", "model.safetensors"));
        Assert.Equal(weights.Values.Sum(w => w.Count), (long)json["parameters"]!);
    }

    [Fact]
    public void InfoDefaultsHeadsToWidthOver64AndAcceptsOverride()
    {
        var path = TestData.Small("vit_tiny48", "model.safetensors");
        var (_, stdout, _) = CliRunner.Run("info", "--checkpoint", path);
        Assert.Equal(1, (int)JsonNode.Parse(stdout)!["config"]!["num_heads"]!);
        (_, stdout, _) = CliRunner.Run("info", "--checkpoint", path, "--heads", "4");
        Assert.Equal(4, (int)JsonNode.Parse(stdout)!["config"]!["num_heads"]!);
    }

    [Fact]
    public void InitThenRunRoundTripsThroughOurOwnFormat()
    {
        var ckpt = Path.Combine(_tmp, "tiny.safetensors");
        var (code, _, err) = CliRunner.Run("init", "--model", "vit_tiny_patch16_224", "--img-size", "32", "--classes", "7", "--output", ckpt);
        Assert.True(code == 0, err);
        var loaded = Checkpoint.Load(ckpt);
        Assert.Equal(32, loaded.Config.ImageSize);
        Assert.Equal(7, loaded.Config.NumClasses);
        Assert.Equal(3, ((VitSharp.Models.VitConfig)loaded.Config).NumHeads); // from our metadata, not width/64
    }

    [Fact]
    public void BadInputsGiveOneLineErrorsAndExitCodeOne()
    {
        var dir = TestData.Small("vit_tiny48");
        var truncated = Path.Combine(_tmp, "truncated.safetensors");
        File.WriteAllBytes(truncated, File.ReadAllBytes(Path.Combine(dir, "model.safetensors"))[..5000]);
        var cases = new[]
        {
            (new[] { "info", "--checkpoint", Path.Combine(_tmp, "missing.safetensors") }, "file not found"),
            (new[] { "info", "--checkpoint", truncated }, "truncated"),
            (new[] { "run", "--checkpoint", Path.Combine(dir, "model.safetensors"), "--heads", "2",
                "--input", TestData.Small("vit_tiny48_at80", "input.npy"), "--output", Path.Combine(_tmp, "o.npy") }, "--img-size"),
            (new[] { "run", "--checkpoint", Path.Combine(dir, "model.safetensors"), "--heads", "3",
                "--input", Path.Combine(dir, "input.npy"), "--output", Path.Combine(_tmp, "o.npy") }, "not divisible by 3 heads"),
        };
        foreach (var (args, expected) in cases)
        {
            var (code, _, err) = CliRunner.Run(args);
            Assert.Equal(1, code);
            Assert.Contains(expected, err);
            Assert.StartsWith("error: ", err);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
    }
}
