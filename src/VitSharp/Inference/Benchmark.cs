using System.Diagnostics;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Backends.Cuda;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Inference;

/// <summary>What to time: images per forward, forwards per round, rounds (the median round is reported).</summary>
public sealed record BenchmarkOptions
{
    public int Batch { get; init; } = 256;
    public int Iters { get; init; } = 20;
    public int Rounds { get; init; } = 5;
    /// <summary>CUDA compute type (the CPU computes in f32).</summary>
    public DType DType { get; init; } = DType.BF16;
    /// <summary>A per-op device time breakdown of one eager forward (CUDA).</summary>
    public bool Profile { get; init; }
    /// <summary>Seed of the random weights when none are given.</summary>
    public int Seed { get; init; }
}

/// <summary>One timed mode: the median time of one forward over a batch, and the FLOPs it stands for
/// (<see cref="ModelCost.ForwardFlops"/>, the library's one formula).</summary>
public sealed record BenchmarkResult(string Model, string Device, string DType, int Batch, string Mode, double MsPerBatch, double FlopsPerImage)
{
    public double ImagesPerSecond => Batch * 1000 / MsPerBatch;
    public double TflopsPerSecond => FlopsPerImage * Batch / 1e9 / MsPerBatch;

    /// <summary>The line `vit bench` prints and the peer scripts parse.</summary>
    public override string ToString() =>
        $"RESULT vitsharp {Model} batch={Batch} dtype={DType} mode={Mode} ms/batch={MsPerBatch:F3} images/s={ImagesPerSecond:F0} " +
        $"TFLOP/s={TflopsPerSecond:F1} device=\"{Device}\"";
}

/// <summary>Device time of one op kind in one eager forward.</summary>
public sealed record OpTime(string Op, int Calls, double Ms);

/// <summary>A benchmark run: one result per measured case, and the per-op device profile when one was asked for.</summary>
public sealed record BenchmarkReport(IReadOnlyList<BenchmarkResult> Results, IReadOnlyList<OpTime>? Profile);

/// <summary>
/// Inference throughput as the timm peer (bench/peers/timm_infer.py) measures it: input already on the device, weights
/// prepared for inference (as a <see cref="Classifier"/> holds them), warm-up forwards, then the median of several timed
/// rounds. On the CPU the forward is timed with a stopwatch; on CUDA eagerly and as a replayed CUDA graph, with device
/// events.
/// </summary>
public static class Benchmark
{
    public static BenchmarkReport Run(string name, ModelConfig config, Device device, BenchmarkOptions o,
        IReadOnlyDictionary<string, HostArray>? weights = null)
    {
        if (o.Batch <= 0 || o.Iters <= 0 || o.Rounds <= 0) throw new VitSharpException("--batch-size, --iters and --rounds must be positive");
        if (o.DType == DType.I8 && !device.IsCpu) throw new VitSharpException("--dtype int8 runs on the CPU only");
        // the profile times a model of its own on a timing backend, which has no FP8 products: it would be bf16's
        if (o.DType == DType.F8E4M3 && o.Profile) throw new VitSharpException("--profile times the bf16 forward op by op and cannot see FP8 products: leave out --profile or --dtype fp8");
        if (o.DType == DType.F8E4M3 && device.IsCpu) throw new VitSharpException("--dtype fp8 runs on CUDA GPUs only (FP8 tensor cores)");
        var input = RandomInput(config, o.Batch);
        double flops = ModelCost.ForwardFlops(config);
        weights ??= Initializer.Init(config, o.Seed);

        using IBackend be = device.IsCpu ? CpuBackend.Instance : new CudaBackend(o.DType == DType.F8E4M3 ? DType.BF16 : o.DType, device.Index);
        using var model = VisionModel.Create(config, be);
        model.Load(weights, "benchmark weights");
        model.PrepareForInference();
        if (o.DType == DType.I8) model.UseInt8();
        if (o.DType == DType.F8E4M3)
        {
            // the activation scales from the first images of the timed batch, as a calibration set would give them
            int c = Math.Min(8, o.Batch), per = config.InChannels * config.ImageSize * config.ImageSize;
            var calib = new HostArray([c, config.InChannels, config.ImageSize, config.ImageSize], input.AsSpan(0, c * per).ToArray());
            if (model.UseFp8(model.CalibrateInputs([calib])) == 0) throw new VitSharpException($"no Linear layer of {name} can run FP8");
        }
        using var img = be.Allocate([o.Batch, config.InChannels, config.ImageSize, config.ImageSize], be.ComputeType);
        be.CopyFromHost(input, img);
        model.Forward(img).Dispose();
        be.Synchronize();
        string dt = model.IsInt8 ? "int8" : model.IsFp8 ? "fp8" : be.ComputeType == DType.BF16 ? "bf16" : "f32";
        if (model.IsFp8 && be is CudaBackend { Fp8RefusedShapes: > 0 and var refused }) dt += $"({refused}-shapes-bf16)";
        if (model.IsInt8 && be is IInt8Linear q) dt += $"({q.Int8Kernel})";   // which int8 kernel ran: avx512-vnni, avx-vnni, scalar

        if (be is not CudaBackend cuda)
        {
            var ms = TimeForwards(model, img, o.Iters, o.Rounds);
            return new([new BenchmarkResult(name, "cpu", dt, o.Batch, "eager", Median(ms), flops)], null);
        }

        using var start = new CudaEvent(cuda.Context);
        using var stop = new CudaEvent(cuda.Context);
        double TimeIt(Action body)
        {
            for (int i = 0; i < 3; i++) body();
            var ms = new List<double>();
            for (int r = 0; r < o.Rounds; r++)
            {
                start.Record();
                for (int i = 0; i < o.Iters; i++) body();
                stop.Record();
                ms.Add(stop.ElapsedSince(start) / o.Iters);
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
        var profile = o.Profile ? Profile(cuda, config, weights, img) : null;
        return new([
            new BenchmarkResult(name, dev, dt, o.Batch, "eager", eager, flops),
            new BenchmarkResult(name, dev, dt, o.Batch, "cuda-graph", graphed, flops),
        ], profile);
    }

    /// <summary>Host time of one forward (ms), averaged over <paramref name="iters"/> forwards, for each of
    /// <paramref name="rounds"/> rounds; the backend is synchronised at the end of each round.</summary>
    public static List<double> TimeForwards(VisionModel model, Tensor input, int iters, int rounds)
    {
        var times = new List<double>(rounds);
        for (int r = 0; r < rounds; r++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < iters; i++) model.Forward(input).Dispose();
            model.Backend.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds / iters);
        }
        return times;
    }

    /// <summary>The upper median (the value at index n/2 of the sorted list).</summary>
    public static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToList();
        if (s.Count == 0) throw new ArgumentException("no values");
        return s[s.Count / 2];
    }

    /// <summary>Uniform random pixels in [-2, 2) of a batch at the config's resolution (seed 1).</summary>
    public static float[] RandomInput(ModelConfig config, int batch)
    {
        var rng = new Random(1);
        var input = new float[(long)batch * config.InChannels * config.ImageSize * config.ImageSize];
        for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 4 - 2);
        return input;
    }

    /// <summary>Device time per op kind: events recorded around each backend call of one eager forward.</summary>
    private static List<OpTime> Profile(CudaBackend cuda, ModelConfig config, IReadOnlyDictionary<string, HostArray> weights, Tensor img)
    {
        var events = new List<(string Op, CudaEvent Begin, CudaEvent End)>();
        using var timed = new TimedBackend(cuda, (op, body) =>
        {
            var b = new CudaEvent(cuda.Context);
            var e = new CudaEvent(cuda.Context);
            b.Record(); body(); e.Record();
            events.Add((op, b, e));
        });
        using (var m = VisionModel.Create(config, timed))
        {
            m.Load(weights, "benchmark weights");
            m.Forward(img).Dispose();
            foreach (var (_, b, e) in events) { b.Dispose(); e.Dispose(); }
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
        return totals.OrderByDescending(kv => kv.Value.Ms).Select(kv => new OpTime(kv.Key, kv.Value.Calls, kv.Value.Ms)).ToList();
    }
}
