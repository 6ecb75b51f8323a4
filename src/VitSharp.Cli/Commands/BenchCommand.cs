using System.CommandLine;
using System.Diagnostics;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Backends.Cuda;
using VitSharp.Backends.Cuda.Testing;
using VitSharp.Tensors;

namespace VitSharp.Cli;

/// <summary>
/// `vit bench`: inference throughput of a ViT preset with random weights, input already on the device (as the timm
/// peer measures it). On CUDA the forward is timed eagerly and as a replayed CUDA graph, with device events; the
/// median of several timed rounds is reported. --profile adds a per-step breakdown from events between the ops.
/// </summary>
public sealed class BenchCommand : ICliCommand
{
    public Command Create()
    {
        var device = new Option<string>("--device") { Description = "cpu or cuda[:N]", DefaultValueFactory = _ => "cuda" };
        var model = new Option<string>("--model") { Description = "vit_{tiny,small,base,large}_patch16_224", DefaultValueFactory = _ => "vit_base_patch16_224" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 256 };
        var dtype = new Option<string>("--dtype") { Description = "bf16 or f32 (CUDA)", DefaultValueFactory = _ => "bf16" };
        var iters = new Option<int>("--iters") { Description = "forwards per timed round", DefaultValueFactory = _ => 20 };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 5 };
        var profile = new Option<bool>("--profile") { Description = "per-step device time breakdown" };
        var cmd = new Command("bench", "Measure ViT inference throughput (images/s) and time per batch");
        foreach (var o in new Option[] { device, model, batch, dtype, iters, rounds, profile }) cmd.Options.Add(o);
        cmd.SetAction(r => Run(Device.Parse(r.GetValue(device)!), r.GetValue(model)!, r.GetValue(batch), r.GetValue(dtype)!,
            r.GetValue(iters), r.GetValue(rounds), r.GetValue(profile)));
        return cmd;
    }

    private static int Run(Device device, string modelName, int batch, string dtypeText, int iters, int rounds, bool profile)
    {
        if (!VitShape.Presets.TryGetValue(modelName, out var shape))
        {
            Console.Error.WriteLine($"unknown model {modelName}; known: {string.Join(", ", VitShape.Presets.Keys)}");
            return 2;
        }
        var dtype = dtypeText.ToLowerInvariant() switch { "bf16" => DType.BF16, "f32" or "fp32" => DType.F32, _ => throw new ArgumentException($"dtype {dtypeText}") };
        var weights = ReferenceVit.RandomWeights(shape, 0);
        var rng = new Random(1);
        var input = new float[(long)batch * 3 * shape.Image * shape.Image];
        for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 4 - 2);
        double gflop = shape.Flops() * batch / 1e9;

        if (device.IsCpu)
        {
            var cpu = CpuBackend.Instance;
            using var vitC = new ReferenceVit(cpu, shape, weights);
            using var imgC = Tensor.FromArray(input, batch, 3, shape.Image, shape.Image);
            vitC.Forward(imgC);
            var times = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < iters; i++) vitC.Forward(imgC);
                times.Add(sw.Elapsed.TotalMilliseconds / iters);
            }
            Report(modelName, "cpu", "f32", batch, "eager", Median(times), gflop);
            return 0;
        }

        using var be = new CudaBackend(dtype, device.Index);
        using var vit = new ReferenceVit(be, shape, weights);
        using var img = be.Allocate([batch, 3, shape.Image, shape.Image], dtype);
        be.CopyFromHost(input, img);
        vit.Forward(img);
        be.Synchronize();
        using var start = new CudaEvent(be.Context);
        using var stop = new CudaEvent(be.Context);

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

        double eager = TimeIt(() => vit.Forward(img));
        using var graph = be.Capture(() => vit.Forward(img));
        double graphed = TimeIt(graph.Launch);
        var dev = be.Context.Name;
        Report(modelName, dev, dtypeText, batch, "eager", eager, gflop);
        Report(modelName, dev, dtypeText, batch, "cuda-graph", graphed, gflop);

        if (profile)
        {
            var marks = new List<(string, CudaEvent)>();
            var first = new CudaEvent(be.Context);
            first.Record();
            vit.Forward(img, name => { var e = new CudaEvent(be.Context); e.Record(); marks.Add((name, e)); });
            be.Synchronize();
            var totals = new Dictionary<string, double>();
            var prev = first;
            foreach (var (name, e) in marks)
            {
                totals[name] = totals.GetValueOrDefault(name) + e.ElapsedSince(prev);
                prev = e;
            }
            double sum = totals.Values.Sum();
            Console.WriteLine($"profile ({modelName}, batch {batch}, {dtypeText}, eager with events between steps; total {sum:F3} ms)");
            foreach (var (name, t) in totals.OrderByDescending(kv => kv.Value))
                Console.WriteLine($"  {name,-16} {t,9:F3} ms  {100 * t / sum,5:F1}%");
            first.Dispose();
            foreach (var (_, e) in marks) e.Dispose();
        }
        return 0;
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
