using VitSharp.Models;

namespace VitSharp.Tests.Models;

public class PresetTests
{
    private static long Count(ModelConfig c) => (c switch
    {
        VitConfig v => VisionTransformer.Layout(v),
        MixerConfig m => MlpMixer.Layout(m),
        _ => throw new ArgumentException(),
    }).Sum(l => Tensors.Shape.Count(l.Item2));

    // Parameter counts timm reports for the same configurations (sum of p.numel()).
    [Theory]
    [InlineData("vit_tiny_patch16_224", 5_717_416)]
    [InlineData("vit_small_patch16_224", 22_050_664)]
    [InlineData("vit_base_patch16_224", 86_567_656)]
    [InlineData("vit_base_patch32_224", 88_224_232)]
    [InlineData("vit_large_patch16_224", 304_326_632)]
    [InlineData("vit_huge_patch14_224", 632_045_800)]
    [InlineData("vit_base_patch16_384", 86_859_496)]
    [InlineData("mixer_b16_224", 59_880_472)]
    [InlineData("deit_tiny_distilled_patch16_224", 5_910_800)]
    [InlineData("deit_small_distilled_patch16_224", 22_436_432)]
    [InlineData("deit_base_distilled_patch16_224", 87_338_192)]
    public void ParameterCountsMatchTimm(string name, long expected) => Assert.Equal(expected, Count(Presets.Get(name)));

    [Fact]
    public void UnknownPresetNamesTheKnownOnes()
    {
        var e = Assert.Throws<VitSharpException>(() => Presets.Get("vit_gigantic"));
        Assert.Contains("vit_base_patch16_224", e.Message);
    }
}

public class ParameterSetTests
{
    [Fact]
    public void EveryParameterStartsOn64BytesAndRoundTrips()
    {
        var config = (VitConfig)Presets.Get("vit_tiny_patch16_224") with { ImageSize = 32, NumClasses = 7 };
        var weights = Initializer.Init(config, seed: 5);
        using var model = VisionModel.Create(config, VitSharp.Backends.Cpu.CpuBackend.Instance);
        Assert.All(model.Parameters.Layout, l => Assert.Equal(0, l.Offset % 16));
        Assert.Equal(weights.Values.Sum(w => w.Count), model.Parameters.ElementCount);
        Assert.Equal(0, model.Parameters["head.bias"].Pointer % 64);
        model.Load(weights, "init");
        var back = model.Parameters.ToHost();
        foreach (var (k, v) in weights) Assert.Equal(v.Data, back[k].Data);
    }
}
