using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Tests.Models;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>
/// The family options train: every parameter gradient of a whole model (layer scale, distillation and register tokens,
/// pre-norm, pixel-normalised patches, inner width ≠ width, max pooling, QuickGELU / ReLU / SiLU) against central finite
/// differences of the model's own inference forward, on the refs-families checkpoints. Cross-entropy loss in double on
/// the host; fp32 forwards, so h = 1e-2 and a tolerance of 2e-3 + 2e-2·|g| (a wrong or missing term fails by far more).
/// </summary>
public class FamilyGradientTests
{
    private static double Loss(VisionModel model, HostArray input, int[] labels)
    {
        var logits = model.Run(input);
        int k = logits.Shape[1];
        double sum = 0;
        for (int b = 0; b < labels.Length; b++)
        {
            double max = double.NegativeInfinity, z = 0;
            for (int j = 0; j < k; j++) max = Math.Max(max, logits.Data[b * k + j]);
            for (int j = 0; j < k; j++) z += Math.Exp(logits.Data[b * k + j] - max);
            sum += Math.Log(z) + max - logits.Data[b * k + labels[b]];
        }
        return sum / labels.Length;
    }

    public static IEnumerable<object[]> Cases =>
    [
        ["deit_distilled", "model.safetensors", null!, null!, 2],
        ["vit_reg4", "model.safetensors", null!, null!, 2],
        ["vit_dinov2_reg", "model.safetensors", null!, null!, 2],
        ["vit_clip_quickgelu", "model.safetensors", null!, "quick_gelu", 2],
        ["vit_avg_nocls", "model.safetensors", "max", null!, 2],
        ["vit_no_qkv_bias_relu", "model.safetensors", null!, "silu", 2],
        ["lucid_vit", "model.pt", null!, null!, 4],
        ["lucid_simple_vit", "model.pt", null!, null!, 2],
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void GradientsMatchFiniteDifferences(string name, string file, string? pool, string? act, int heads)
    {
        var dir = FamilyParityTests.Dir(name);
        var ckpt = Checkpoint.Load(Path.Combine(dir, file), new LoadOptions
        {
            Heads = heads, ImageSize = 32, Pool = VitConfig.ParsePool(pool), Gelu = ModelConfig.ParseActivation(act),
        });
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Npy.Read(Path.Combine(dir, "input.npy"));
        int classes = ((VitConfig)ckpt.Config).NumClasses;
        int[] labels = [1, classes - 1];

        Dictionary<string, HostArray> grads;
        using (var tm = TrainableModel.Create(model))
        {
            using var x = Tensor.FromArray(input.Data, input.Shape);
            using var targets = Tensor.FromArray(Targets.Smoothed(labels, classes, 0f), labels.Length, classes);
            using var dlogits = Tensor.Host(labels.Length, classes);
            tm.ZeroGrad();
            var logits = tm.Forward(x, rng: null);
            tm.Be.SoftmaxCrossEntropy(logits, targets, dlogits);
            tm.Backward(dlogits);
            grads = tm.Grads.ToHost();
        }

        var weights = model.Parameters.ToHost();
        var failures = new List<string>();
        const float h = 1e-2f;
        foreach (var (pname, g) in grads)
        {
            var w = weights[pname];
            // A few entries of every tensor: the largest gradient, and a spread of others.
            int largest = 0;
            for (int i = 1; i < g.Data.Length; i++) if (Math.Abs(g.Data[i]) > Math.Abs(g.Data[largest])) largest = i;
            foreach (int i in new[] { largest, 0, g.Data.Length / 2, g.Data.Length - 1 }.Distinct())
            {
                float saved = w.Data[i];
                w.Data[i] = saved + h;
                model.Load(weights, "perturbed");
                double up = Loss(model, input, labels);
                w.Data[i] = saved - h;
                model.Load(weights, "perturbed");
                double down = Loss(model, input, labels);
                w.Data[i] = saved;
                double numeric = (up - down) / (2 * h);
                if (Math.Abs(numeric - g.Data[i]) > 2e-3 + 2e-2 * Math.Abs(numeric))
                    failures.Add($"{pname}[{i}]: analytic {g.Data[i]:G6}, numeric {numeric:G6}");
            }
        }
        model.Load(weights, "restored");
        Assert.True(failures.Count == 0, $"{name}: " + string.Join("; ", failures));
        // The check compared real gradients: the tokens the options add have nonzero ones.
        foreach (var tok in new[] { "dist_token", "reg_token", "blocks.0.ls1.gamma", "norm_pre.weight", "patch_embed.pixel_norm.weight" })
            if (grads.TryGetValue(tok, out var tg)) Assert.Contains(tg.Data, v => v != 0);
    }

    [Theory]
    [InlineData("vit_layerscale_qknorm", "qk_norm")]
    [InlineData("vit_siglip_map", "global_pool='map'")]
    public void OptionsWithoutABackwardRefuseTraining(string name, string what)
    {
        var dir = FamilyParityTests.Dir(name);
        using var model = Checkpoint.Load(Path.Combine(dir, "model.safetensors"), new LoadOptions { Heads = 2 }).CreateModel(CpuBackend.Instance);
        using var tm = TrainableModel.Create(model);
        var input = Npy.Read(Path.Combine(dir, "input.npy"));
        using var x = Tensor.FromArray(input.Data, input.Shape);
        var e = Assert.Throws<NotSupportedException>(() => tm.Forward(x, rng: null));
        Assert.Contains(what, e.Message);
    }
}
