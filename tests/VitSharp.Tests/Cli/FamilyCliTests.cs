using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Tests.Models;

namespace VitSharp.Tests.Cli;

/// <summary>`vit info` naming the family it read, `--name-map` making an unknown layout load, and refusals that list the
/// tensors they could not place.</summary>
[Collection("cli")]
public class FamilyCliTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-family-cli-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void InfoNamesTheFamilyAndWhy()
    {
        var (code, stdout, err) = CliRunner.Run("info", "--checkpoint", Path.Combine(FamilyParityTests.Dir("lucid_vit"), "model.pt"), "--heads", "4");
        Assert.True(code == 0, err);
        var json = JsonNode.Parse(stdout)!;
        Assert.Equal("vit-pytorch ViT", (string?)json["family"]);
        Assert.Contains("NameMaps/vit-pytorch-vit.json", (string?)json["family_reason"]);
        Assert.Equal(16, (int)json["config"]!["head_dim"]!);
        Assert.True((bool)json["config"]!["pixel_norm"]!);

        (code, stdout, err) = CliRunner.Run("info", "--checkpoint", FamilyParityTests.Dir("hf_dinov2"));
        Assert.True(code == 0, err);
        json = JsonNode.Parse(stdout)!;
        Assert.Equal("Hugging Face dinov2", (string?)json["family"]);
        Assert.True((bool)json["config"]!["layer_scale"]!);

        (code, stdout, err) = CliRunner.Run("info", "--checkpoint", Path.Combine(FamilyParityTests.Dir("vit_reg4"), "model.safetensors"), "--heads", "2");
        Assert.True(code == 0, err);
        json = JsonNode.Parse(stdout)!;
        Assert.Equal("timm VisionTransformer", (string?)json["family"]);
        Assert.Contains("reg_tokens=4", (string?)json["family_reason"]);
    }

    /// <summary>A checkpoint of an unknown codebase: vit_avg_nocls's weights under other names.</summary>
    private string Renamed()
    {
        var w = SafeTensors.Read(Path.Combine(FamilyParityTests.Dir("vit_avg_nocls"), "model.safetensors"));
        var renamed = w.ToDictionary(kv => "backbone." + kv.Key.Replace("blocks.", "layers.").Replace("attn.qkv", "attn.in_proj").Replace("fc_norm", "final_ln"), kv => kv.Value);
        var path = Path.Combine(_tmp, "other.safetensors");
        SafeTensors.Write(path, renamed);
        return path;
    }

    [Fact]
    public void RefusalListsUnplacedTensorsWithNearestNames()
    {
        var (code, stdout, err) = CliRunner.Run("info", "--checkpoint", Renamed());
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        var json = JsonNode.Parse(stdout)!;
        var unplaced = json["unplaced"]!.AsArray();
        Assert.Contains(unplaced, u => (string?)u!["tensor"] == "backbone.layers.1.attn.in_proj.weight"
            && u["nearest"]!.AsArray().Any(n => (string?)n == "blocks.1.attn.proj.weight" || (string?)n == "blocks.1.attn.qkv.weight"));
        Assert.Contains("--name-map", (string?)json["advice"]);
    }

    [Fact]
    public void NameMapMakesAnUnknownLayoutLoadAndMatch()
    {
        var map = Path.Combine(_tmp, "map.json");
        File.WriteAllText(map, """
        {
          "name": "my codebase",
          "config": { "heads": 2, "eps": 1e-6, "activation": "gelu" },
          "rules": [
            { "from": "^backbone\\.layers\\.(\\d+)\\.attn\\.in_proj\\.(weight|bias)$", "to": "blocks.$1.attn.qkv.$2" },
            { "from": "^backbone\\.layers\\.", "to": "blocks." },
            { "from": "^backbone\\.final_ln\\.", "to": "fc_norm." },
            { "from": "^backbone\\.", "to": "" }
          ]
        }
        """);
        var dir = FamilyParityTests.Dir("vit_avg_nocls");
        var output = Path.Combine(_tmp, "logits.npy");
        var (code, _, err) = CliRunner.Run("run", "--checkpoint", Renamed(), "--name-map", map, "--input", Path.Combine(dir, "input.npy"), "--output", output);
        Assert.True(code == 0, err);
        Assert.InRange(TestData.MaxAbsDiff(Npy.Read(output), Npy.Read(Path.Combine(dir, "logits.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void NameMapErrorsAreOneLineAndNameTheFile()
    {
        var bad = Path.Combine(_tmp, "bad.json");
        File.WriteAllText(bad, """{ "rules": [], "config": { "hedas": 2 } }""");
        var (code, _, err) = CliRunner.Run("info", "--checkpoint", Renamed(), "--name-map", bad);
        Assert.Equal(1, code);
        Assert.Contains("bad.json", err);
        Assert.Contains("unknown key 'config.hedas'", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        File.WriteAllText(bad, """{ "rules": [ { "from": "^x$", "to": "y", "transform": "rotate" } ] }""");
        (code, _, err) = CliRunner.Run("info", "--checkpoint", Renamed(), "--name-map", bad);
        Assert.Equal(1, code);
        Assert.Contains("'rules[0].transform': 'rotate' is not one of", err);
        File.WriteAllText(bad, """{ "rules": [ { "from": "([", "to": "x" } ] }""");
        (code, _, err) = CliRunner.Run("info", "--checkpoint", Renamed(), "--name-map", bad);
        Assert.Equal(1, code);
        Assert.Contains("not a valid regular expression", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void RunAcceptsOtherSizesWithDynamicImgSize()
    {
        var dir = FamilyParityTests.Dir("vit_dinov2_reg");
        var output = Path.Combine(_tmp, "larger.npy");
        var (code, _, err) = CliRunner.Run("run", "--checkpoint", Path.Combine(dir, "model.safetensors"), "--heads", "2", "--dynamic-img-size",
            "--input", Path.Combine(dir, "input_larger.npy"), "--output", output);
        Assert.True(code == 0, err);
        Assert.InRange(TestData.MaxAbsDiff(Npy.Read(output), Npy.Read(Path.Combine(dir, "logits_at_larger.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void InitMakesFamilyPresetsWithTheirOptions()
    {
        var path = Path.Combine(_tmp, "dino.safetensors");
        var (code, _, err) = CliRunner.Run("init", "--model", "vit_small_patch14_reg4_dinov2", "--img-size", "28", "--classes", "3", "--output", path);
        Assert.True(code == 0, err);
        var ckpt = Checkpoint.Load(path);
        var c = (VitSharp.Models.VitConfig)ckpt.Config;
        Assert.Equal((4, true, 6, 14), (c.RegTokens, c.LayerScale, c.NumHeads, c.PatchSize));
        Assert.All(ckpt.Weights["blocks.3.ls2.gamma"].Data, g => Assert.Equal(1e-5f, g));
        using var model = ckpt.CreateModel(VitSharp.Backends.Cpu.CpuBackend.Instance);
        var logits = model.Run(new HostArray([1, 3, 28, 28], new float[3 * 28 * 28]));
        Assert.Equal([1, 3], logits.Shape);
    }
}
