using System.CommandLine;
using VitSharp.Training;

namespace VitSharp.Cli.Commands;

/// <summary>
/// `vit finetune`: a pre-trained checkpoint on new data at a new resolution: position embeddings resampled, the head kept
/// when it has the data's classes (else, or with --new-head, a new zero-initialised one). Defaults follow the ViT paper's fine-tuning recipe (SGD momentum 0.9, lr 0.03, warmup, cosine, clip 1.0, no
/// weight decay); a --config file or --set overrides them.
/// </summary>
public sealed class FinetuneCommand : ICliCommand
{
    /// <summary>The defaults: <see cref="FineTune.PaperRecipe"/>.</summary>
    public const string Defaults = FineTune.PaperRecipe;

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
        var newHead = new Option<bool>("--new-head") { Description = "a new zero head even when the checkpoint's head has the data's classes" };
        var dtype = new Option<string?>("--dtype") { Description = "compute type on cuda: bf16 (mixed precision, default) or f32" };
        var cmd = new Command("finetune", "fine-tune a checkpoint on new data, at a new resolution");
        foreach (var o in new Option[] { checkpoint, data, size, classes, config, output, batch, set, fresh, newHead, device, dtype }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var overrides = TrainingConsole.Overrides(r.GetValue(set), r.GetValue(data), r.GetValue(output), r.GetValue(batch));
            if (r.GetValue(newHead)) overrides.Add("new_head=true");
            var cfg = FineTune.Configure(r.GetValue(checkpoint)!, r.GetValue(config), overrides, r.GetValue(size));
            var (train, val) = FineTune.OpenData(cfg, r.GetValue(classes));
            TrainingConsole.DescribeData(train, val);
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
