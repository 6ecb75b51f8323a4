using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Bench;

/// <summary>
/// Forward latency of ViT presets on the CPU backend (random timm-style weights, random 224×224 input).
/// Options: --model vit_small_patch16_224,vit_base_patch16_224  --batch 1,16  --reps N  --threads T  --profile (time per op)
/// --warmup N (forwards before timing, default 2)  --samples (print every forward's time, in order)  --no-prepack (re-pack weights every product, as training does)  --dtype f32|int8 (int8: the blocks' Linear layers
/// quantised per output channel, activations per token, <see cref="VisionModel.UseInt8"/>).
/// Prints one line per (model, batch): median and best latency, images/s and the effective GFLOP/s of the forward.
/// </summary>
public sealed class VitBench : IBench
{
    public string Name => "vit";
    public string Description => "ViT-S/16 and ViT-B/16 forward latency at batch 1 and 16 on the CPU backend";

    public int Run(string[] args)
    {
        var models = (GemmBench.OptS(args, "--model") ?? "vit_small_patch16_224,vit_base_patch16_224").Split(',');
        var batches = (GemmBench.OptS(args, "--batch") ?? "1,16").Split(',').Select(int.Parse).ToArray();
        int reps = GemmBench.Opt(args, "--reps", 0);
        // Forwards before timing. 2 sees JIT compilation done but not the runtime's tier-up (about 15 batch-1
        // forwards of ViT-S run partly in tier-0 code, and the tier-1 compiles share the cores); 30 measures steady state.
        int warmup = GemmBench.Opt(args, "--warmup", 2);
        CpuThreads.Count = GemmBench.Opt(args, "--threads", CpuThreads.Count);
        bool profile = args.Contains("--profile"), prepack = !args.Contains("--no-prepack");
        string dtype = GemmBench.OptS(args, "--dtype") ?? "f32";
        if (dtype is not ("f32" or "int8")) { Console.Error.WriteLine($"--dtype: expected f32 or int8, got '{dtype}'"); return 2; }
        var timing = new TimingBackend(CpuBackend.Instance);
        IBackend be = profile ? timing : CpuBackend.Instance;
        foreach (var name in models)
        {
            var config = (VitConfig)Presets.Get(name);
            using var model = new VisionTransformer(config, be);
            model.Load(Initializer.Init(config, seed: 0), "random init");
            if (prepack) model.PrepareForInference();
            if (dtype == "int8") model.UseInt8();
            foreach (int b in batches)
            {
                var rng = new Random(1);
                var input = new float[b * 3 * config.ImageSize * config.ImageSize];
                for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 2 - 1);
                using var x = be.Allocate([b, 3, config.ImageSize, config.ImageSize], be.ComputeType);
                be.CopyFromHost(input, x);
                for (int w = 0; w < warmup; w++) model.Forward(x).Dispose();   // warm-up: JIT (and tier-up), buffers
                timing.Times.Clear();   // the profile is of the timed forwards only (no JIT, no first allocations)
                int n = reps > 0 ? reps : b == 1 ? 15 : 5;
                // One forward a round, as many rounds as reps: the library's harness (Benchmark), so best and median
                // are of single forwards.
                var ms = Benchmark.TimeForwards(model, x, iters: 1, rounds: n);
                if (args.Contains("--samples")) Console.WriteLine("samples (ms, in order): " + string.Join(" ", ms.Select(v => v.ToString("F1"))));
                ms.Sort();
                if (profile) { Console.WriteLine($"{name} batch {b}, {n} forwards:"); timing.Print(); }
                double med = Benchmark.Median(ms), gflop = b * ForwardGflop(config);
                Console.WriteLine($"vitsharp{(dtype == "int8" ? " int8" : "")} {name} batch {b} threads {CpuThreads.Count}: median {med:F1} ms, best {ms[0]:F1} ms " +
                                  $"(n={n}), {b * 1000 / med:F1} images/s, {gflop / med * 1000:F0} GFLOP/s");
            }
        }
        return 0;
    }

    /// <summary>Multiply-adds ×2 of one image's forward (the library's one formula, <see cref="ModelCost"/>).</summary>
    public static double ForwardGflop(VitConfig c) => ModelCost.ForwardFlops(c) / 1e9;
}
