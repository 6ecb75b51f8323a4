using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Models;

namespace VitSharp.Tests.Models;

/// <summary>Each model reads its own layout back: InferConfig is the inverse of Layout.</summary>
public class LayoutTests
{
    public static IEnumerable<object[]> Configs =>
    [
        [Presets.Get("vit_tiny_patch16_224")],
        [Presets.Get("mixer_s16_224")],
        [new VitConfig { ImageSize = 32, PatchSize = 4, EmbedDim = 48, Depth = 2, NumHeads = 3, MlpDim = 100, NumClasses = 0, Pool = Pooling.Avg, FcNorm = true, ClassToken = false, QkvBias = false }],
        [new VitConfig { ImageSize = 16, PatchSize = 8, EmbedDim = 64, Depth = 1, NumHeads = 2, MlpDim = 96, NumClasses = 7, RepresentationSize = 6, Gelu = Activation.GeluTanh, LayerNormEps = 1e-5f }],
    ];

    [Theory]
    [MemberData(nameof(Configs))]
    public void InferConfigReadsLayoutBack(ModelConfig config)
    {
        var weights = Initializer.Init(config, seed: 1);
        var inferred = ConfigInference.Infer(weights, "layout", System.Text.Json.Nodes.JsonNode.Parse(config.ToJson().ToJsonString())!.AsObject(), heads: null);
        Assert.Equal(config, inferred);
    }
}
