using System.Diagnostics;
using VitSharp.Backends;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>
/// Training throughput on synthetic data already on the device, the step timm's peer (bench/peers/timm_train.py)
/// times: forward, softmax cross-entropy with label smoothing 0.1, backward, global-norm clipping at 1.0, AdamW
/// (lr 1e-3, wd 0.05) — with fp32 master weights when the backend computes in bf16. No host synchronisation inside the
/// timed steps; the median over rounds is reported.
/// </summary>
public static class TrainingBenchmark
{
    /// <summary>One training benchmark: time and images per second per step, and the loss at the first and last step.</summary>
    public sealed record Result(string Model, int Batch, DType ComputeType, double MsPerStep, double ImagesPerSecond, float FirstLoss, float LastLoss, string? Profile)
    {
        /// <summary>Whether the timed steps replayed a recorded graph.</summary>
        public bool Replayed { get; init; }
    }

    /// <summary>A preset name, or "cifar": the CIFAR ViT of the GPU peer figures (32², patch 4, width 192, depth 9, 3 heads).</summary>
    public static ModelConfig Config(string name) => name == "cifar"
        ? new VitConfig { ImageSize = 32, PatchSize = 4, EmbedDim = 192, Depth = 9, NumHeads = 3, MlpDim = 768, NumClasses = 10 }
        : Presets.Get(name);

    /// <param name="name">a preset name or "cifar" (<see cref="Config"/>).</param><param name="be">the backend it trains on.</param>
    /// <param name="batch">images per step.</param><param name="steps">timed steps per round.</param>
    /// <param name="rounds">timed rounds (the median is reported).</param><param name="warmup">steps before timing (the first gives the first loss).</param>
    /// <param name="profiler">when given, runs one more step through it (e.g. CudaBackend.ProfileOnce) and returns its report.</param>
    /// <param name="replay">record the forward, loss, backward and clipping once and replay them (CUDA graphs), as the
    /// trainer does.</param>
    public static Result Run(string name, ITrainingBackend be, int batch, int steps = 20, int rounds = 3, int warmup = 3, Func<Action, string>? profiler = null,
        bool replay = false) => Run(Config(name), name, be, batch, steps, rounds, warmup, profiler, replay);

    /// <summary>The same for any model configuration (e.g. a training config's model section), reported as <paramref name="name"/>.</summary>
    public static Result Run(ModelConfig config, string name, ITrainingBackend be, int batch, int steps = 20, int rounds = 3, int warmup = 3,
        Func<Action, string>? profiler = null, bool replay = false)
    {
        if (batch <= 0 || steps <= 0 || rounds <= 0 || warmup < 0) throw new VitSharpException("batch, steps and rounds must be positive");
        config.Validate();
        using var model = VisionModel.Create(config, be);
        var init = Initializer.Init(config, seed: 0);
        model.Load(init, "random init");
        using var tm = TrainableModel.Create(model);
        using var opt = new AdamW(model.Parameters, tm.Grads, excludeFromDecay: true) { WeightDecay = 0.05f };
        opt.LoadWeights(init, "random init");
        var rng = new Random(1);
        int k = config.NumClasses;
        using var x = be.Allocate([batch, config.InChannels, config.ImageSize, config.ImageSize], be.ComputeType);
        var hostX = new float[x.Length];
        for (int i = 0; i < hostX.Length; i++) hostX[i] = (float)(rng.NextDouble() * 4 - 2);
        be.CopyFromHost(hostX, x);
        var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(k)).ToArray();
        using var t = be.Allocate([batch, k], DType.F32);
        be.CopyFromHost(Targets.Smoothed(labels, k, 0.1f), t);
        using var dl = be.Allocate([batch, k], be.ComputeType);
        using var stats = be.Allocate([4], DType.F32);
        var host = new float[4];

        var io = new TrainableModel.StepIo(x, t, null, dl, stats, 1f);
        void Clip() => be.ClipGradNorm(tm.Grads.Buffer, 1f, stats);
        void Step()
        {
            tm.ZeroGrad();
            tm.TrainStep(io, rng: null, Clip, replay);
            opt.Update(1e-3f);
        }
        float Loss() { be.CopyToHost(stats, host); be.Zero(stats); return host[0]; }

        be.Zero(stats);
        Step();
        float first = Loss();
        for (int i = 1; i < warmup; i++) Step();
        be.Synchronize();
        var times = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) Step();
            be.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds / steps);
        }
        be.Zero(stats);
        Step();
        float last = Loss();
        times.Sort();
        double ms = times[times.Count / 2];
        string? report = profiler?.Invoke(Step);
        return new Result(name, batch, be.ComputeType, ms, batch * 1000 / ms, first, last, report) { Replayed = tm.Replaying };
    }
}
