using System.Diagnostics;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Tensors;

namespace VitSharp.Bench;

/// <summary>Time per call of the non-GEMM CPU kernels at ViT-B/16 batch-16 sizes (median of --reps, default 9).</summary>
public sealed class KernelsBench : IBench
{
    public string Name => "kernels";
    public string Description => "GELU, LayerNorm, attention, Add at ViT-B/16 sizes (ms per call)";

    public int Run(string[] args)
    {
        int reps = GemmBench.Opt(args, "--reps", 9), batch = GemmBench.Opt(args, "--batch", 16);
        CpuThreads.Count = GemmBench.Opt(args, "--threads", CpuThreads.Count);
        var be = CpuBackend.Instance;
        int t = 197, d = 768, heads = 12, rows = batch * t;
        var rng = new Random(1);
        Tensor R(params int[] shape)
        {
            var x = Tensor.Host(shape);
            var s = x.Span;
            for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() * 2 - 1);
            return x;
        }
        using Tensor hidden = R(rows, 4 * d), hidden2 = R(rows, 4 * d), x = R(rows, d), y = R(rows, d), g = R(d), b = R(d),
            qkv = R(batch, t, 3 * d), ctx = R(batch, t, d);
        Console.WriteLine($"kernels at batch {batch}, {t} tokens, width {d}, threads {CpuThreads.Count}: median ms (best)");
        Report("GELU erf (rows x 3072)", reps, () => be.Apply(Activation.Gelu, hidden, hidden2));
        Report("GELU tanh (rows x 3072)", reps, () => be.Apply(Activation.GeluTanh, hidden, hidden2));
        Report("LayerNorm (rows x 768)", reps, () => be.LayerNorm(x, g, b, 1e-6f, y));
        Report("Add (rows x 768)", reps, () => be.Add(x, y, y));
        Report("Attention (12 heads x 64)", reps, () => be.Attention(qkv, ctx, heads, 0.125f));
        return 0;
    }

    private static void Report(string name, int reps, Action op)
    {
        op();
        var ms = new List<double>();
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            op();
            ms.Add(sw.Elapsed.TotalMilliseconds);
        }
        ms.Sort();
        Console.WriteLine($"  {name,-28} {ms[ms.Count / 2],8:F2} ({ms[0]:F2})");
    }
}
