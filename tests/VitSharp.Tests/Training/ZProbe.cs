using System.Diagnostics;
using VitSharp.Training;
using Xunit.Abstractions;
namespace VitSharp.Tests.Training;
public class OpsProbe(ITestOutputHelper output)
{
    [Fact]
    public void Probe()
    {
        var be = VitSharp.Backends.Cpu.CpuBackend.Instance;
        var cfg = TrainConfig.Parse("""{"model": { "architecture": "vit", "img_size": 32, "patch_size": 4, "embed_dim": 64, "depth": 4, "num_heads": 4, "mlp_dim": 128 }}""").BuildModelConfig(10);
        using var model = VitSharp.Models.VisionModel.Create(cfg, be);
        model.Load(VitSharp.Models.Initializer.Init(cfg, 1), "x");
        using var tm = TrainableModel.Create(model);
        using var x = VitSharp.Tensors.Tensor.Host(128, 3, 32, 32);
        using var t = VitSharp.Tensors.Tensor.FromArray(Targets.Smoothed(new int[128], 10, 0.1f), 128, 10);
        using var dl = VitSharp.Tensors.Tensor.Host(128, 10);
        for (int it = 0; it < 6; it++)
        {
            var sw = Stopwatch.StartNew();
            var logits = tm.Forward(x, null);
            double f = sw.Elapsed.TotalMilliseconds;
            be.SoftmaxCrossEntropy(logits, t, dl);
            tm.Backward(dl);
            output.WriteLine($"fwd {f:F0} ms, total {sw.Elapsed.TotalMilliseconds:F0} ms");
        }
        using var h = VitSharp.Tensors.Tensor.Host(128 * 65, 192);
        var sw2 = Stopwatch.StartNew();
        be.ActivationBackward(VitSharp.Backends.Activation.Gelu, h, h, h);
        output.WriteLine($"gelu bwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        be.Apply(VitSharp.Backends.Activation.Gelu, h, h);
        output.WriteLine($"gelu fwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        using var qkv = VitSharp.Tensors.Tensor.Host(128, 65, 288); using var ctx = VitSharp.Tensors.Tensor.Host(128, 65, 96); using var pr = VitSharp.Tensors.Tensor.Host(128, 3, 65, 65); using var dq = VitSharp.Tensors.Tensor.Host(128, 65, 288);
        be.Attention(qkv, ctx, 3, 0.1f, pr);
        output.WriteLine($"attn fwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        be.AttentionBackward(ctx, qkv, pr, dq, 3, 0.1f);
        output.WriteLine($"attn bwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        using var ln = VitSharp.Tensors.Tensor.Host(128, 65, 96); using var m = VitSharp.Tensors.Tensor.Host(128*65); using var g = VitSharp.Tensors.Tensor.Host(96);
        be.LayerNormTrain(ln, g, g, 1e-6f, ctx, m, m);
        output.WriteLine($"ln fwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        be.LayerNormBackward(ln, ln, g, m, m, ctx, g, g);
        output.WriteLine($"ln bwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        using var w = VitSharp.Tensors.Tensor.Host(192, 96); using var dw = VitSharp.Tensors.Tensor.Host(192, 96);
        be.Linear(ln, w, null, h);
        output.WriteLine($"linear fwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        for (int i = 0; i < 3; i++) {
        be.LinearBackward(h, ln, w, ctx, dw, null);
        output.WriteLine($"linear bwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        be.LinearBackward(h, ln, w, null, dw, null);
        output.WriteLine($"linear bwd dW only {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        be.Linear(ln, w, null, h);
        output.WriteLine($"linear fwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        be.AttentionBackward(ctx, qkv, pr, dq, 3, 0.1f);
        output.WriteLine($"attn bwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        be.Attention(qkv, ctx, 3, 0.1f, pr);
        output.WriteLine($"attn fwd {sw2.Elapsed.TotalMilliseconds:F0} ms"); sw2.Restart();
        }
    }
}
