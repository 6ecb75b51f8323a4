using System.Diagnostics;
using System.Runtime.InteropServices;
using VitSharp.Backends.Cpu;

namespace VitSharp.Bench;

/// <summary>
/// GFLOP/s of the CPU GEMM (2·M·N·K flops per product) on 1 and 2 threads, median of several timed samples.
/// Shapes are written M×N×K: C[M,N] = A[M,K]·op(B); "NT" is the Linear layout (B stored N×K), "NN" B stored K×N.
/// Options: --reps R (samples, default 7), --threads 1,2, --kc/--mc/--nc to try other blockings, --only NAME,
/// --prepacked (NT shapes: B packed once beforehand, as for inference weights), --copies N (with --prepacked: cycle
/// through N packed copies, so B comes from L3/DRAM as a model's weights do).
/// </summary>
public sealed unsafe class GemmBench : IBench
{
    public string Name => "gemm";
    public string Description => "GEMM GFLOP/s at 768x768x3072, ViT-B Linear shapes (batch 1 and 16), 1 and 2 threads";

    private static readonly (string Name, int M, int N, int K, bool TransB)[] Shapes =
    {
        ("square-ish NN", 768, 768, 3072, false),
        ("square-ish NT", 768, 768, 3072, true),
        ("ViT-B qkv b1", 197, 2304, 768, true),
        ("ViT-B qkv b16", 3152, 2304, 768, true),
        ("ViT-B proj b16", 3152, 768, 768, true),
        ("ViT-B fc1 b16", 3152, 3072, 768, true),
        ("ViT-B fc2 b16", 3152, 768, 3072, true),
        ("ViT-S fc1 b1", 197, 1536, 384, true),
        ("ViT-S fc2 b1", 197, 384, 1536, true),
        ("ViT-S qkv b16", 3152, 1152, 384, true),
        ("ViT-S fc1 b16", 3152, 1536, 384, true),
        ("ViT-S fc2 b16", 3152, 384, 1536, true),
    };

    public int Run(string[] args)
    {
        int reps = Opt(args, "--reps", 7);
        var threadCounts = (OptS(args, "--threads") ?? "1,2").Split(',').Select(int.Parse).ToArray();
        Gemm.KC = Opt(args, "--kc", Gemm.KC);
        Gemm.McSlivers = Opt(args, "--mc", Gemm.McSlivers);
        Gemm.NcSlivers = Opt(args, "--nc", Gemm.NcSlivers);
        string? only = OptS(args, "--only");
        _prepacked = args.Contains("--prepacked");
        _copies = Math.Max(1, Opt(args, "--copies", 1));
        _int8 = args.Contains("--int8");
        if (OptS(args, "--dump-int8-kernel") is { } dump)
        {
            // The emitted 512-bit int8 kernel's bytes, to read with: objdump -D -b binary -m i386:x86-64 FILE
            File.WriteAllBytes(dump, Int8ZmmKernel.Emit());
            Console.WriteLine($"{dump}: {new FileInfo(dump).Length} bytes; AVX512-VNNI {Int8ZmmKernel.HasAvx512Vnni()}, kernel usable {Int8ZmmKernel.IsSupported}");
            return 0;
        }
        _epilogue = (args.Contains("--bias"), args.Contains("--accumulate"), args.Contains("--gelu") ? VitSharp.Backends.Activation.Gelu : VitSharp.Backends.Activation.None);
        Console.WriteLine($"gemm: isa {Gemm.Isa}{(_prepacked ? ", B prepacked" : "")}{(_int8 ? $", int8 ({Int8Gemm.Isa})" : "")}, KC {Gemm.KC}, mc {Gemm.McSlivers} slivers, nc {Gemm.NcSlivers} slivers, median of {reps}");
        Console.WriteLine($"{"shape",-16} {"M×N×K",-16} " + string.Join(" ", threadCounts.Select(t => $"{t + " thr GFLOP/s",16}")));
        foreach (var s in Shapes)
        {
            if (only is not null && !s.Name.Contains(only)) continue;
            var line = $"{s.Name,-16} {$"{s.M}x{s.N}x{s.K}",-16}";
            foreach (int t in threadCounts) line += $" {Measure(s.M, s.N, s.K, s.TransB, t, reps),16:F1}";
            Console.WriteLine(line);
        }
        return 0;
    }

    private static bool _prepacked;
    private static int _copies;
    private static bool _int8;   // --int8 (NT shapes): the int8 product (weights quantised once, x per row each call); GOP/s
    private static (bool Bias, bool Accumulate, VitSharp.Backends.Activation Act) _epilogue;   // --bias, --accumulate, --gelu (prepacked path)   // --copies N (with --prepacked): cycle through N packed weights, as a model's layers do (weights from L3/DRAM)

    private static double Measure(int m, int n, int k, bool transB, int threads, int reps)
    {
        int saved = CpuThreads.Count;
        CpuThreads.Count = threads;
        var rng = new Random(1);
        float* pa = Fill(rng, m * k), pb = Fill(rng, n * k), pc = Fill(rng, m * n);
        double flops = 2.0 * m * n * k;
        var samples = new List<double>();
        {
            var packs = _prepacked && transB ? Enumerable.Range(0, _copies).Select(_ => PackedB.Create(true, n, k, pb, k)).ToArray() : null;
            var q8 = _int8 && transB ? Enumerable.Range(0, _copies).Select(_ => VitSharp.Tensors.Int8Matrix.Quantize(new ReadOnlySpan<float>(pb, n * k), n, k)).ToArray() : null;
            int next = 0;
            void Once()
            {
                if (q8 is not null) { Int8Gemm.Run(m, pa, k, q8[next++ % q8.Length], pc, n, _epilogue.Accumulate, _epilogue.Bias ? pc : null, _epilogue.Act); return; }
                if (packs is not null) Gemm.Run(m, pa, k, packs[next++ % packs.Length], pc, n, _epilogue.Accumulate, _epilogue.Bias ? pc : null, _epilogue.Act);
                else Gemm.Run(false, transB, m, n, k, pa, k, pb, transB ? k : n, pc, n, false);
            }
            Once();
            var sw = Stopwatch.StartNew();
            Once();
            // Each sample runs for at least ~60 ms.
            int iters = Math.Max(1, (int)(0.06 / Math.Max(sw.Elapsed.TotalSeconds, 1e-6)));
            for (int r = 0; r < reps; r++)
            {
                sw.Restart();
                for (int i = 0; i < iters; i++) Once();
                samples.Add(flops * iters / sw.Elapsed.TotalSeconds / 1e9);
            }
            if (packs is not null) foreach (var p in packs) p.Dispose();
            if (q8 is not null) foreach (var q in q8) q.Dispose();
        }
        CpuThreads.Count = saved;
        NativeMemory.AlignedFree(pa); NativeMemory.AlignedFree(pb); NativeMemory.AlignedFree(pc);
        samples.Sort();
        return samples[samples.Count / 2];
    }

    // 64-byte aligned like the library's tensors.
    private static float* Fill(Random rng, int n)
    {
        var x = (float*)NativeMemory.AlignedAlloc((nuint)n * 4, 64);
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() - 0.5);
        return x;
    }

    internal static int Opt(string[] args, string name, int fallback)
    {
        var s = OptS(args, name);
        return s is null ? fallback : int.Parse(s);
    }

    internal static string? OptS(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
