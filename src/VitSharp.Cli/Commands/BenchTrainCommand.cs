using System.CommandLine;
using VitSharp.Training;

namespace VitSharp.Cli.Commands;

/// <summary>`vit bench-train`: training steps per second on synthetic data (the step bench/peers/timm_train.py times).</summary>
public sealed class BenchTrainCommand : ICliCommand
{
    public Command Create()
    {
        var device = SharedOptions.Device();
        var model = new Option<string>("--model") { Description = "a preset name, or cifar (32², patch 4, width 192, depth 9)", DefaultValueFactory = _ => "cifar" };
        var batch = SharedOptions.BatchSize(128, "images per training step", legacyBatch: true);
        var dtype = new Option<string?>("--dtype") { Description = "bf16 (default on cuda) or f32" };
        var steps = new Option<int>("--steps") { Description = "steps per timed round", DefaultValueFactory = _ => 20 };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 3 };
        var profile = new Option<bool>("--profile") { Description = "device time per kernel and GEMM shape over one step (CUDA)" };
        var graphs = new Option<bool>("--graphs") { Description = "replay each step as a recorded CUDA graph, as vit train does (cuda_graphs)" };
        var config = new Option<string?>("--config", "-C") { Description = "the model of this training config (its model section; 10 classes) instead of --model" };
        var cmd = new Command("bench-train", "measure training throughput (images/s) on synthetic data");
        foreach (var o in new Option[] { device, model, batch, dtype, steps, rounds, profile, graphs, config }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dev = r.GetValue(device)!;
            var be = Backends.CreateTraining(dev, r.GetValue(dtype) ?? TrainCommand.DefaultDType(dev));
            Func<Action, string>? profiler = r.GetValue(profile) && be is VitSharp.Backends.Cuda.CudaBackend cb ? cb.ProfileOnce : null;
            var res = r.GetValue(config) is { } file
                ? TrainingBenchmark.Run(TrainConfig.Load(file).BuildModelConfig(numClasses: 10), Path.GetFileNameWithoutExtension(file), be,
                    r.GetValue(batch), r.GetValue(steps), r.GetValue(rounds), profiler: profiler, replay: r.GetValue(graphs))
                : TrainingBenchmark.Run(r.GetValue(model)!, be, r.GetValue(batch), r.GetValue(steps), r.GetValue(rounds), profiler: profiler,
                    replay: r.GetValue(graphs));
            Console.WriteLine($"RESULT vitsharp-{res.ComputeType.ToString().ToLowerInvariant()} {res.Model} batch={res.Batch} " +
                              $"ms/step={res.MsPerStep:F3} images/s={res.ImagesPerSecond:F0} loss {res.FirstLoss:F4} -> {res.LastLoss:F4}" +
                              (res.Replayed ? " graphs" : ""));
            if (res.Profile is not null) Console.Write(res.Profile);
            return 0;
        }));
        return cmd;
    }
}
