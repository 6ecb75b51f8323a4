using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using VitSharp.Backends.Cpu;

namespace VitSharp.Bench;

/// <summary>The machine's fp32 FMA peak from C#: 12 independent Vector512 FMA chains per thread (enough to cover the
/// FMA latency on two pipes), 1 and 2 threads, median of --reps (default 7). GFLOP/s = 2 × 16 lanes × FMAs / s.</summary>
public sealed class PeakBench : IBench
{
    public string Name => "peak";
    public string Description => "fp32 FMA peak GFLOP/s on 1 and 2 threads (the roofline for the GEMM figures)";

    public int Run(string[] args)
    {
        int reps = GemmBench.Opt(args, "--reps", 7);
        foreach (int t in new[] { 1, 2 })
        {
            var g = new List<double>();
            for (int r = 0; r < reps; r++)
            {
                const long iters = 20_000_000;
                var sw = Stopwatch.StartNew();
                var threads = Enumerable.Range(0, t).Select(_ => new Thread(() => Chains(iters))).ToList();
                threads.ForEach(th => th.Start());
                threads.ForEach(th => th.Join());
                g.Add(t * iters * 12 * 32 / sw.Elapsed.TotalSeconds / 1e9);
            }
            g.Sort();
            Console.WriteLine($"peak fp32, {t} thread(s): median {g[g.Count / 2]:F0} GFLOP/s, best {g[^1]:F0}");
        }
        return 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains(long iters)
    {
        if (!Vector512.IsHardwareAccelerated) return 0;
        var m = Vector512.Create(0.999999f); var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}
