using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Tests.Training;
using VitSharp.Training;

namespace VitSharp.Tests.Models;

/// <summary>
/// The ViT with CCT's convolutional tokenizer against PyTorch/timm (Data/refs-cct, made by bench/peers/make_cct_refs.py on
/// the GPU machine's CPU in float32: timm's VisionTransformer with its patch_embed replaced by CCT's Tokenizer —
/// conv 3×3 without bias, ReLU, max pool 3/2/1 per layer). The config comes from the weights alone; logits, tokens, the
/// label-smoothed cross-entropy and every parameter's gradient must equal PyTorch's.
/// </summary>
public class CctParityTests
{
    [Theory]
    [InlineData("cct_tiny16", 2, Pooling.Token)]      // two conv layers (16² → 4×4 tokens), class token
    [InlineData("cct_tiny16_avg", 1, Pooling.Avg)]    // one conv layer (16² → 8×8), average pooling with fc_norm
    public void ForwardAndGradientsMatchPyTorch(string name, int layers, Pooling pool)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "Data", "refs-cct", name);
        var ckpt = Checkpoint.Load(Path.Combine(dir, "model.safetensors"), new LoadOptions { Heads = 2 });
        var config = (VitConfig)ckpt.Config;
        Assert.Equal(layers, config.ConvTokenizer!.Layers);
        Assert.Equal(pool, config.Pool);
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Npy.Read(Path.Combine(dir, "input.npy"));

        var logits = model.Run(input);
        var want = Npy.Read(Path.Combine(dir, "logits.npy"));
        Assert.Equal(want.Shape, logits.Shape);
        Assert.InRange(TestData.MaxAbsDiff(logits, want), 0, 1e-5);
        var tokens = model.Run(input, OutputKind.Tokens);
        var wantTokens = Npy.Read(Path.Combine(dir, "features.npy"));
        Assert.Equal(wantTokens.Shape, tokens.Shape);
        Assert.InRange(TestData.MaxAbsDiff(tokens, wantTokens), 0, 1e-5);

        using var tm = TrainableModel.Create(model);
        var labels = Npy.ReadInt64(Path.Combine(dir, "labels.npy")).Select(l => (int)l).ToArray();
        using var x = Tensor.FromArray(input.Data, input.Shape);
        using var targets = Tensor.FromArray(Targets.Smoothed(labels, config.NumClasses, 0.1f), labels.Length, config.NumClasses);
        using var dlogits = Tensor.Host(labels.Length, config.NumClasses);
        tm.ZeroGrad();
        var trainLogits = tm.Forward(x, rng: null);
        float loss = tm.Be.SoftmaxCrossEntropy(trainLogits, targets, dlogits);
        tm.Backward(dlogits);
        float expectedLoss = Npy.Read(Path.Combine(dir, "loss.npy")).Data[0];
        Assert.InRange(Math.Abs(loss - expectedLoss), 0, 1e-5 * Math.Abs(expectedLoss));

        var grads = tm.Grads.ToHost();
        var expected = SafeTensors.Read(Path.Combine(dir, "grads.safetensors"));
        Assert.Contains("tokenizer.conv_layers.0.0.weight", expected.Keys);
        GradientParityTests.AssertGradientsMatch(expected, grads);
    }
}
