using System.Text.Json.Nodes;
using VitSharp.Models;
using VitSharp.Tests.Cli;

namespace VitSharp.Tests.Models;

/// <summary>The one FLOP formula and parameter count, against timm's published figures, and `vit presets`' table.</summary>
[Collection("cli")]
public class ModelCostTests
{
    [Theory]
    // name, timm's parameter count, FLOPs by hand (2 × fvcore's GMACs: ViT-B/16 17.56, Mixer-B/16 12.60)
    [InlineData("vit_base_patch16_224", 86_567_656L, 35_127_656_448d)]
    [InlineData("mixer_b16_224", 59_880_472L, 25_203_535_872d)]
    public void ParametersAndFlopsMatchPublishedFigures(string name, long parameters, double flops)
    {
        var c = Presets.Get(name);
        Assert.Equal(parameters, ModelCost.Parameters(c));
        Assert.Equal(flops, ModelCost.ForwardFlops(c));
        Assert.Equal(parameters, Initializer.Init(c, 0).Values.Sum(a => (long)a.Count));
    }

    [Fact]
    public void FlopsGrowWithResolutionAsTokensDo()
    {
        var b224 = ModelCost.ForwardFlops(Presets.Get("vit_base_patch16_224"));
        var b384 = ModelCost.ForwardFlops(Presets.Get("vit_base_patch16_384"));
        Assert.InRange(b384 / b224, 3.1, 3.2); // 577 vs 197 tokens, attention quadratic: timm 55.5 vs 17.6 GMACs
        Assert.Equal(1.26e9, ModelCost.ForwardFlops(Presets.Get("vit_tiny_patch16_224")) / 2, 0.01e9); // timm: 1.26 GMACs
    }

    [Fact]
    public void PresetsPrintsATable()
    {
        var (code, stdout, _) = CliRunner.Run("presets");
        Assert.Equal(0, code);
        var lines = stdout.TrimEnd().Split('\n').Select(l => l.TrimEnd()).ToList();
        Assert.Equal(Presets.All.Count + 1, lines.Count);
        Assert.Equal(["name", "params", "M", "GFLOPs", "image", "patch"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var b16 = lines.Single(l => l.StartsWith("vit_base_patch16_224 ")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["vit_base_patch16_224", "86.6", "35.1", "224", "16"], b16);
        var l14 = lines.Single(l => l.StartsWith("vit_large_patch14_224 ")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["224", "14"], l14[3..]);
        Assert.DoesNotContain('{', stdout);
    }

    [Fact]
    public void PresetsJsonKeepsTheConfigurations()
    {
        var (code, stdout, _) = CliRunner.Run("presets", "--json");
        Assert.Equal(0, code);
        var all = JsonNode.Parse(stdout)!.AsArray();
        Assert.Equal(Presets.All.Count, all.Count);
        var b16 = all.Single(p => (string)p!["name"]! == "vit_base_patch16_224")!;
        Assert.Equal(768, (int)b16["config"]!["embed_dim"]!);
        Assert.Equal(86_567_656L, (long)b16["parameters"]!);
        Assert.Equal(35.128, (double)b16["gflops"]!, 3);
    }
}
