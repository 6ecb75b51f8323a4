using System.CommandLine;
using System.Diagnostics;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Backends.Cuda;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Cli.Commands;

/// <summary>
/// `vit bench`: inference throughput of a preset (VitSharp.Models) with seeded random weights, input already on the
/// device, as the timm peer (bench/peers/timm_infer.py) measures it. On CUDA the forward is timed eagerly and as a
/// replayed CUDA graph, with device events; the median of several timed rounds is reported. --profile adds a per-step
/// breakdown from device events recorded between the forward's ops.
/// </summary>
public sealed class BenchCommand : ICliCommand
{
    public Command Create()
    {
        var device = SharedOptions.Device();
        var model = new Option<string>("--model") { Description = "a preset name (vit presets)", DefaultValueFactory = _ => "vit_base_patch16_224" };
        var batch = SharedOptions.BatchSize(256, legacyBatch: true);
        var dtype = new Option<string>("--dtype") { Description = "bf16 or f32 (CUDA; the CPU computes in f32)", DefaultValueFactory = _ => "bf16" };
        var iters = new Option<int>("--iters") { Description = "forwards per timed round", DefaultValueFactory = _ => 20 };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 5 };
        var profile = new Option<bool>("--profile") { Description = "per-step device time breakdown (CUDA)" };
        var cmd = new Command("bench", "measure inference throughput (images/s) and time per batch");
        foreach (var o in new Option[] { device, model, batch, dtype, iters, rounds, profile }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() => Run(Device.Parse(Backends.ResolveDevice(r.GetValue(device))), r.GetValue(model)!, r.GetValue(batch),
            r.GetValue(dtype)!, r.GetValue(iters), r.GetValue(rounds), r.GetValue(profile))));
        return cmd;
    }

    private static int Run(Device device, string modelName, int batch, string dtypeText, int iters, int rounds, bool profile)
    {
        var config = Presets.Get(modelName);
        var dtype = dtypeText.ToLowerInvariant() switch
        {
            "bf16" => DType.BF16,
            "f32" or "fp32" => DType.F32,
            _ => throw new VitSharpException($"--dtype must be bf16 or f32, not '{dtypeText}'"),
        };
        if (batch <= 0 || iters <= 0 || rounds <= 0) throw new VitSharpException("--batch-size, --iters and --rounds must be positive");
        var rng = new Random(1);
        var input = new float[(long)batch * config.InChannels * config.ImageSize * config.ImageSize];
        for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 4 - 2);
        double gflop = ModelCost.ForwardFlops(config) * batch / 1e9;

        using IBackend be = device.IsCpu ? CpuBackend.Instance : new CudaBackend(dtype, device.Index);
        using var model = VisionModel.Create(config, be);
        model.Load(Initializer.Init(config, seed: 0), "random init");
        using var img = be.Allocate([batch, config.InChannels, config.ImageSize, config.ImageSize], be.ComputeType);
        be.CopyFromHost(input, img);
        model.Forward(img).Dispose();
        be.Synchronize();
        string dt = be.ComputeType == DType.BF16 ? "bf16" : "f32";

        if (be is not CudaBackend cuda)
        {
            var times = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < iters; i++) model.Forward(img).Dispose();
                times.Add(sw.Elapsed.TotalMilliseconds / iters);
            }
            Report(modelName, "cpu", dt, batch, "eager", Median(times), gflop);
            return 0;
        }

        using var start = new CudaEvent(cuda.Context);
        using var stop = new CudaEvent(cuda.Context);
        double TimeIt(Action body)
        {
            for (int i = 0; i < 3; i++) body();
            var ms = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                start.Record();
                for (int i = 0; i < iters; i++) body();
                stop.Record();
                ms.Add(stop.ElapsedSince(start) / iters);
            }
            return Median(ms);
        }

        double eager = TimeIt(() => model.Forward(img).Dispose());
        // The graph writes its outputs into the tensors allocated while capturing: keep them until the graph goes.
        ModelOutput? captured = null;
        double graphed;
        using (var graph = cuda.Capture(() => captured = model.Forward(img)))
            graphed = TimeIt(graph.Launch);
        captured?.Dispose();
        var dev = cuda.Context.Name;
        Report(modelName, dev, dt, batch, "eager", eager, gflop);
        Report(modelName, dev, dt, batch, "cuda-graph", graphed, gflop);
        if (profile) Profile(cuda, model, img, modelName, batch, dt);
        return 0;
    }

    /// <summary>Device time per op kind: events recorded around each backend call of one eager forward.</summary>
    private static void Profile(CudaBackend cuda, VisionModel model, Tensor img, string modelName, int batch, string dt)
    {
        var events = new List<(string Op, CudaEvent Begin, CudaEvent End)>();
        using var timed = new TimedBackend(cuda, (op, body) =>
        {
            var b = new CudaEvent(cuda.Context);
            var e = new CudaEvent(cuda.Context);
            b.Record(); body(); e.Record();
            events.Add((op, b, e));
        });
        using (var m = VisionModel.Create(model.Config, timed))
        {
            m.Load(Initializer.Init(model.Config, seed: 0), "random init");
            m.Forward(img).Dispose();
            events.Clear();
            m.Forward(img).Dispose();
            cuda.Synchronize();
        }
        var totals = new Dictionary<string, (double Ms, int Calls)>();
        foreach (var (op, b, e) in events)
        {
            var (ms, n) = totals.GetValueOrDefault(op);
            totals[op] = (ms + e.ElapsedSince(b), n + 1);
            b.Dispose(); e.Dispose();
        }
        double sum = totals.Values.Sum(v => v.Ms);
        Console.WriteLine($"profile {modelName} batch={batch} dtype={dt}: device time per op kind, one eager forward, {sum:F3} ms in ops");
        foreach (var (op, (ms, n)) in totals.OrderByDescending(kv => kv.Value.Ms))
            Console.WriteLine($"  {op,-28} {n,4} calls {ms,9:F3} ms {100 * ms / sum,6:F1}%");
    }

    private static void Report(string model, string device, string dtype, int batch, string mode, double ms, double gflop) =>
        Console.WriteLine($"RESULT vitsharp {model} batch={batch} dtype={dtype} mode={mode} ms/batch={ms:F3} images/s={batch * 1000 / ms:F0} " +
                          $"TFLOP/s={gflop / ms:F1} device=\"{device}\"");

    private static double Median(List<double> xs)
    {
        xs.Sort();
        return xs[xs.Count / 2];
    }
}
