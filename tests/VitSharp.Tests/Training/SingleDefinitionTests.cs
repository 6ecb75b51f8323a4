using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>Training and inference are two passes of one model definition: without dropout they compute the same logits,
/// bit for bit on the CPU. (Widths are multiples of 16: GELU's scalar tail and its vector body differ by an ulp, and the
/// fused GEMM epilogue meets tails at other places than a whole-tensor GELU does.)</summary>
public class SingleDefinitionTests
{
    public static IEnumerable<object[]> Models =>
    [
        [new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2, MlpDim = 48, NumClasses = 5 }],
        [new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, NumHeads = 2, MlpDim = 48, NumClasses = 5, Pool = Pooling.Avg, FcNorm = true, ClassToken = false }],
        [new VitConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 1, NumHeads = 2, MlpDim = 48, NumClasses = 5, RepresentationSize = 6, Gelu = Activation.GeluTanh }],
        [new MixerConfig { ImageSize = 16, PatchSize = 4, EmbedDim = 32, Depth = 2, TokenMlpDim = 16, ChannelMlpDim = 32, NumClasses = 5 }],
    ];

    [Theory]
    [MemberData(nameof(Models))]
    public void TrainingForwardEqualsInferenceForward(ModelConfig config)
    {
        using var model = VisionModel.Create(config, CpuBackend.Instance);
        model.Load(Initializer.Init(config, seed: 5), "init");
        using var tm = TrainableModel.Create(model);
        var rng = new Random(6);
        var images = new HostArray([3, 3, 16, 16], Enumerable.Range(0, 3 * 3 * 16 * 16).Select(_ => (float)rng.NextDouble()).ToArray());
        using var x = Tensor.FromArray(images.Data, images.Shape);
        var training = tm.Forward(x, rng: null).ToArray();
        var inference = model.Run(images).Data;
        double max = training.Zip(inference, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(max == 0, $"max |training − inference| = {max:G3}");
    }
}
