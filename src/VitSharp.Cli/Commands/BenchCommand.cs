using System.CommandLine;
using VitSharp.Checkpoints;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Cli.Commands;

/// <summary>
/// `vit bench`: inference throughput of a preset with seeded random weights, or of a checkpoint with its own weights
/// (<see cref="Benchmark"/> does the timing). --profile adds a per-step CUDA breakdown.
/// </summary>
public sealed class BenchCommand : ICliCommand
{
    public Command Create()
    {
        var device = SharedOptions.Device();
        var model = new Option<string>("--model") { Description = "a preset name (vit presets)", DefaultValueFactory = _ => "vit_base_patch16_224" };
        var checkpoint = new Option<string?>("--checkpoint", "-c")
        {
            Description = "time this checkpoint (its config and weights, any format Checkpoint.Load reads; 'default': the shipped model) instead of --model",
        };
        var batch = SharedOptions.BatchSize(256, legacyBatch: true);
        var dtype = new Option<string>("--dtype") { Description = "bf16 or f32 (CUDA; the CPU computes in f32), int8 (CPU) or fp8 (CUDA: E4M3 block products, scales calibrated on the first 8 benchmark images)", DefaultValueFactory = _ => "bf16" };
        var iters = new Option<int>("--iters") { Description = "forwards per timed round", DefaultValueFactory = _ => 20 };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 5 };
        var profile = new Option<bool>("--profile") { Description = "per-step device time breakdown (CUDA)" };
        var cmd = new Command("bench", "measure inference throughput (images/s) and time per batch");
        foreach (var o in new Option[] { device, model, checkpoint, batch, dtype, iters, rounds, profile }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dt = r.GetValue(dtype)!.ToLowerInvariant() switch
            {
                "bf16" => DType.BF16,
                "f32" or "fp32" => DType.F32,
                "int8" or "i8" => DType.I8,
                "fp8" or "e4m3" => DType.F8E4M3,
                var other => throw new VitSharpException($"--dtype must be bf16, f32, int8 (CPU) or fp8 (CUDA), not '{other}'"),
            };
            var options = new BenchmarkOptions
            {
                Batch = r.GetValue(batch), Iters = r.GetValue(iters), Rounds = r.GetValue(rounds), DType = dt, Profile = r.GetValue(profile),
            };
            var dev = Device.Parse(Backends.ResolveDevice(r.GetValue(device)));
            BenchmarkReport report;
            if (r.GetValue(checkpoint) is string path)
            {
                if (path == "default") path = DefaultModel.Resolve();
                var ck = Checkpoint.Load(path);
                report = Benchmark.Run(Path.GetFileName(path.TrimEnd('/', '\\')), ck.Config, dev, options, ck.Weights);
            }
            else
            {
                var name = r.GetValue(model)!;
                report = Benchmark.Run(name, Presets.Get(name), dev, options);
            }
            foreach (var result in report.Results) Console.WriteLine(result);
            if (report.Profile is { } ops) Print(ops, report.Results[0]);
            return 0;
        }));
        return cmd;
    }

    private static void Print(IReadOnlyList<OpTime> ops, BenchmarkResult run)
    {
        double sum = ops.Sum(o => o.Ms);
        Console.WriteLine($"profile {run.Model} batch={run.Batch} dtype={run.DType}: device time per op kind, one eager forward, {sum:F3} ms in ops");
        foreach (var o in ops)
            Console.WriteLine($"  {o.Op,-28} {o.Calls,4} calls {o.Ms,9:F3} ms {100 * o.Ms / sum,6:F1}%");
    }
}
