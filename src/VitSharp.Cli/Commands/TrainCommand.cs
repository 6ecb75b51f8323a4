using System.CommandLine;
using System.CommandLine.Parsing;
using VitSharp.Training;
using VitSharp.Training.Distributed;

namespace VitSharp.Cli.Commands;

/// <summary>`vit train`: trains from a JSON configuration (see configs/), resuming from output/checkpoint.safetensors.</summary>
public sealed class TrainCommand : ICliCommand
{
    public Command Create()
    {
        var config = new Option<string>("--config", "-C") { Description = "training configuration (JSON)", Required = true };
        var checkpoint = new Option<string?>("--checkpoint", "-c") { Description = "start from these weights (sets init_checkpoint)" };
        var batch = new Option<int?>("--batch-size", "-b") { Description = "images per optimizer micro-batch (sets batch_size)" };
        var data = new Option<string?>("--data") { Description = "dataset: image folder, .tar/.tar.gz archive, or idx folder (overrides data.path)" };
        var output = new Option<string?>("--output", "-o") { Description = "run folder: log.jsonl, checkpoint.safetensors, model.safetensors" };
        var set = new Option<string[]>("--set") { Description = "override a config key, e.g. --set optimizer.lr=0.001 (repeatable)", AllowMultipleArgumentsPerToken = false };
        var fresh = new Option<bool>("--no-resume") { Description = "start afresh even if the output folder has a checkpoint" };
        var force = new Option<bool>("--resume") { Description = "resume the output folder's checkpoint even if it was written under another configuration" };
        var device = new Option<string?>("--device", "-d") { Description = "cpu (default), cuda[:N], or auto (CUDA when present)" };
        var dtype = new Option<string?>("--dtype") { Description = "compute type on cuda: bf16 (mixed precision, default) or f32" };
        var gpus = new Option<int?>("--gpus")
        {
            Description = "data parallel on this host: start N ranks (cuda:0…N−1; with --device cpu, N CPU processes), batch_size being the global batch",
        };
        var teacher = new Option<string?>("--teacher") { Description = "distil from this teacher checkpoint, DeiT-style (sets distillation.teacher)" };
        var distillation = new Option<string?>("--distillation") { Description = "hard (default) or soft: the distillation loss (sets distillation.type)" };
        var cmd = new Command("train", "train a model from a JSON configuration");
        foreach (var o in new Option[] { config, checkpoint, data, output, batch, set, fresh, force, device, dtype, gpus, teacher, distillation }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            // --gpus N: this process only starts and watches the N ranks (each of them runs the lines below).
            if (r.GetValue(gpus) is { } ranks)
                return LocalLaunch.Run(new LocalLaunch.Options
                {
                    Ranks = ranks,
                    Arguments = ["train", .. r.Tokens.Where(t => t.Type is TokenType.Option or TokenType.Argument or TokenType.DoubleDash).Select(t => t.Value)],
                    Device = r.GetValue(device),
                });
            var overrides = TrainingConsole.Overrides(r.GetValue(set), r.GetValue(data), r.GetValue(output), r.GetValue(batch));
            if (r.GetValue(checkpoint) is { } init) overrides.Add($"init_checkpoint={System.Text.Json.Nodes.JsonValue.Create(init)!.ToJsonString()}");
            if (r.GetValue(teacher) is { } kd) overrides.Add($"distillation.teacher={System.Text.Json.Nodes.JsonValue.Create(kd)!.ToJsonString()}");
            if (r.GetValue(distillation) is { } kind) overrides.Add($"distillation.type={System.Text.Json.Nodes.JsonValue.Create(kind)!.ToJsonString()}");
            var cfg = TrainConfig.Load(r.GetValue(config)!, overrides);
            if (r.GetValue(distillation) is not null && cfg.Distillation.Teacher is null)
                throw new VitSharpException("--distillation needs a teacher: --teacher CKPT (or distillation.teacher in the config)");
            var (train, val) = TrainData.Open(cfg.Data, cfg.Seed);
            TrainingConsole.DescribeData(train, val);
            var backend = Backends.CreateTraining(r.GetValue(device) ?? "cpu", r.GetValue(dtype) ?? DefaultDType(r.GetValue(device)));
            // RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT set (torchrun, Slurm, Kubernetes): this process is one rank.
            using var comm = Launch.FromEnvironment() is { } job ? Launch.Join(job, backend) : null;
            using var trainer = new Trainer(cfg, train, val, backend, comm);
            if (r.GetValue(fresh) && r.GetValue(force)) throw new VitSharpException("--resume and --no-resume exclude each other");
            trainer.ResumeOtherConfig = r.GetValue(force);
            var result = TrainingConsole.Run(trainer, resume: !r.GetValue(fresh));
            Console.WriteLine(result.LastEval is { } e
                ? $"done: {result.Steps} steps, top-1 {e.Top1:P2}, top-5 {e.Top5:P2}; model in {Path.Combine(cfg.Output, Trainer.ModelFile)}"
                : $"done: {result.Steps} steps; model in {Path.Combine(cfg.Output, Trainer.ModelFile)}");
            return 0;
        }));
        return cmd;
    }
    internal static string DefaultDType(string? device) => Backends.ResolveDevice(device) == "cpu" ? "f32" : "bf16";
}
