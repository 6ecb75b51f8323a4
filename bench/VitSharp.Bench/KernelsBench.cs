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
        int t = 197, d = GemmBench.Opt(args, "--width", 768), heads = d / 64, rows = batch * t;
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
        using var probs = Tensor.Host(batch, heads, t, t);
        double flop = 4.0 * batch * heads * t * t * (d / heads);
        using var scores = R(heads * t, (t + 15) / 16 * 16);
        Report("Softmax (heads*t rows x t)", reps, () => SoftmaxRows(scores, t, false));
        Report("Softmax padded rows", reps, () => SoftmaxRows(scores, t, true));
        for (int round = 0; round < 2; round++)
        {
            FusedAttention.Enabled = false;
            Report("Attention GEMM path", reps, () => be.Attention(qkv, ctx, heads, 0.125f), flop);
            FusedAttention.Enabled = true;
            Report("Attention fused", reps, () => be.Attention(qkv, ctx, heads, 0.125f), flop);
            Report("Attention fused + probs", reps, () => be.Attention(qkv, ctx, heads, 0.125f, probs), flop);
        }
        return 0;
    }

    private static unsafe void SoftmaxRows(Tensor s, int t, bool padded)
    {
        int ld = s.Dim(1);
        fixed (float* p = s.Span)
            for (int r = 0; r < s.Dim(0); r++)
                if (padded) Normalize.SoftmaxRowPadded(p + (long)r * ld, t, 0.125f);
                else Normalize.SoftmaxRow(p + (long)r * ld, t, 0.125f);
    }

    private static void Report(string name, int reps, Action op, double flop = 0)
    {
        op();
        var ms = new List<double>();
        var cpu = new List<double>();
        var self = Process.GetCurrentProcess();
        for (int r = 0; r < reps; r++)
        {
            self.Refresh();
            var cpu0 = self.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            op();
            ms.Add(sw.Elapsed.TotalMilliseconds);
            self.Refresh();
            cpu.Add((self.TotalProcessorTime - cpu0).TotalMilliseconds);
        }
        ms.Sort();
        cpu.Sort();
        string rate = flop > 0 ? $"  {flop / ms[ms.Count / 2] / 1e6,6:F0} GFLOP/s" : "";
        // CPU time of the process (all pool threads) shows the cost when other processes take the cores.
        Console.WriteLine($"  {name,-28} {ms[ms.Count / 2],8:F2} ({ms[0]:F2}){rate}  cpu {cpu[cpu.Count / 2],8:F2}");
    }
}
