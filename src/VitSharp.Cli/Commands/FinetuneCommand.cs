using System.CommandLine;
using VitSharp.Training;

namespace VitSharp.Cli.Commands;

/// <summary>
/// `vit finetune`: a pre-trained checkpoint on new data at a new resolution: new zero-initialised head, position embeddings
/// resampled. Defaults follow the ViT paper's fine-tuning recipe (SGD momentum 0.9, lr 0.03, warmup, cosine, clip 1.0, no
/// weight decay); a --config file or --set overrides them.
/// </summary>
public sealed class FinetuneCommand : ICliCommand
{
    public const string Defaults = """
        {
          "optimizer": { "name": "sgd", "lr": 0.03, "momentum": 0.9, "weight_decay": 0 },
          "schedule": { "decay": "cosine", "warmup_epochs": 0.5 },
          "batch_size": 64, "epochs": 5, "label_smoothing": 0, "clip_grad_norm": 1.0,
          "data": { "val_split": "val", "horizontal_flip": true },
          "output": "runs/finetune"
        }
        """;

    public Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint", "-c") { Description = "pre-trained model (any format Checkpoint.Load reads)", Required = true };
        var data = new Option<string>("--data") { Description = "dataset: image folder, .tar/.tar.gz archive, or idx folder", Required = true };
        var size = new Option<int?>("--img-size") { Description = "fine-tuning resolution (position embeddings are resampled)" };
        var classes = new Option<int?>("--classes") { Description = "classes of the new head (checked against the data)" };
        var config = new Option<string?>("--config", "-C") { Description = "JSON configuration (default: the paper's SGD recipe)" };
        var output = new Option<string?>("--output", "-o") { Description = "run folder" };
        var set = new Option<string[]>("--set") { Description = "override a config key, e.g. --set epochs=3 (repeatable)" };
        var fresh = new Option<bool>("--no-resume") { Description = "start afresh even if the output folder has a checkpoint" };
        var device = new Option<string?>("--device", "-d") { Description = "cpu (default), cuda[:N], or auto (CUDA when present)" };
        var batch = new Option<int?>("--batch-size", "-b") { Description = "images per optimizer micro-batch (sets batch_size)" };
        var dtype = new Option<string?>("--dtype") { Description = "compute type on cuda: bf16 (mixed precision, default) or f32" };
        var cmd = new Command("finetune", "fine-tune a checkpoint on new data with a new head");
        foreach (var o in new Option[] { checkpoint, data, size, classes, config, output, batch, set, fresh, device, dtype }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var overrides = TrainingConsole.Overrides(r.GetValue(set), r.GetValue(data), r.GetValue(output), r.GetValue(batch));
            overrides.Add($"init_checkpoint={System.Text.Json.Nodes.JsonValue.Create(r.GetValue(checkpoint))!.ToJsonString()}");
            if (r.GetValue(size) is int s) overrides.Add($"model.img_size={s}");
            var cfg = r.GetValue(config) is { } path ? TrainConfig.Load(path, overrides) : TrainConfig.Parse(Defaults, overrides, "fine-tuning defaults");
            var (train, val) = TrainData.Open(cfg.Data, cfg.Seed);
            TrainingConsole.DescribeData(train, val);
            if (r.GetValue(classes) is int k && k != train.Classes.Count)
                throw new VitSharpException($"--classes {k} but the data has {train.Classes.Count} classes ({string.Join(", ", train.Classes.Take(5))}…)");
            var backend = Backends.CreateTraining(r.GetValue(device) ?? "cpu", r.GetValue(dtype) ?? TrainCommand.DefaultDType(r.GetValue(device)));
            using var trainer = new Trainer(cfg, train, val, backend);
            var result = TrainingConsole.Run(trainer, resume: !r.GetValue(fresh));
            Console.WriteLine(result.LastEval is { } e
                ? $"done: {result.Steps} steps, top-1 {e.Top1:P2}, top-5 {e.Top5:P2}; model in {Path.Combine(cfg.Output, Trainer.ModelFile)}"
                : $"done: {result.Steps} steps; model in {Path.Combine(cfg.Output, Trainer.ModelFile)}");
            return 0;
        }));
        return cmd;
    }
}
