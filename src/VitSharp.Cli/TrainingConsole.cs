using Spectre.Console;
using VitSharp.Training;

namespace VitSharp.Cli;

/// <summary>Runs a trainer under a Spectre.Console progress bar (steps, ETA) and prints each log line and evaluation.</summary>
public static class TrainingConsole
{
    /// <summary>One grey line per data set: how many images, and whether and how fast they were cached in memory.</summary>
    public static void DescribeData(Data.Datasets.IImageDataset train, Data.Datasets.IImageDataset? val)
    {
        var console = Terminal.Create();
        foreach (var (name, d) in new[] { ("train", train), ("val", val) })
            if (d is Data.Datasets.CachedDataset c)
                Terminal.Line(console, $"[grey]{name}: {c.Count} images decoded into memory in {c.DecodeTime.TotalSeconds:F1} s ({c.Bytes / 1e6:F0} MB)[/]");
            else if (d is not null)
                Terminal.Line(console, $"[grey]{name}: {d.Count} images, decoded every epoch[/]");
    }

    /// <summary>Trains: under a live progress bar on a terminal, as plain lines in a log. Epochs are shown from 1
    /// (the JSONL log's <c>epoch</c> field stays 0-based, as the trainer counts).</summary>
    public static TrainResult Run(Trainer trainer, bool resume)
    {
        var console = Terminal.Create();
        Terminal.Line(console, $"[grey]{trainer.TotalSteps} steps ({trainer.StepsPerEpoch} per epoch); model {Markup.Escape(trainer.Model.Config.ToJson().ToJsonString())}[/]");
        if (trainer.Distillation is { } kd)
            Terminal.Line(console, $"[grey]distilling from {Markup.Escape(kd.TeacherPath)}: {kd.Kind.ToString().ToLowerInvariant()}, alpha {kd.Alpha:G3}" +
                (kd.Kind == VitSharp.Backends.DistillationKind.Soft ? $", tau {kd.Tau:G3}" : "") +
                (kd.SeparateHeads ? "; distillation token and head" : "; through the class head (the student has no dist_token)") +
                (kd.Renormalised ? "; the batch re-normalised for the teacher" : "") + "[/]");
        if (trainer.Communicator is { WorldSize: > 1 } c)
            Terminal.Line(console, $"[grey]data parallel: rank {c.Rank} of {c.WorldSize} ({c.Kind}); batch_size is the global batch[/]");
        void Print(TrainEvent e)
        {
            switch (e.Kind)
            {
                case "step":
                    Terminal.Line(console, $"epoch {e.Epoch + 1}  step {e.Step}/{e.TotalSteps}  loss {e.Loss:F4}  acc {e.Accuracy:P1}  lr {e.Lr:G3}  {e.ImagesPerSecond:F0} img/s  |g| {e.GradNorm:F2}");
                    break;
                case "eval":
                    Terminal.Line(console, $"[green]eval after epoch {e.Epoch + 1}: top-1 {e.Eval!.Top1:P2}  top-5 {e.Eval.Top5:P2}  loss {e.Eval.Loss:F4}  ({e.Eval.Count} images)[/]");
                    break;
                case "eval_ema":
                    Terminal.Line(console, $"[green]  EMA weights: top-1 {e.Eval!.Top1:P2}  top-5 {e.Eval.Top5:P2}[/]");
                    break;
                case "resume":
                    Terminal.Line(console, $"[grey]resuming {Markup.Escape(e.Path ?? "")} at step {e.Step} (epoch {e.Epoch + 1})[/]");
                    break;
                case "orphan_removed":
                    Terminal.Line(console, $"[grey]removed {Markup.Escape(e.Path ?? "")}, left by a run killed while writing[/]");
                    break;
                case "checkpoint":
                    Terminal.Line(console, $"[grey]checkpoint at step {e.Step}: {Markup.Escape(e.Path ?? "")}[/]");
                    break;
            }
        }
        if (!console.Profile.Capabilities.Interactive || !console.Profile.Capabilities.Ansi)
        {
            trainer.OnEvent = Print;
            return trainer.Run(resume);
        }
        TrainResult? result = null;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("train", maxValue: trainer.TotalSteps);
                trainer.OnEvent = e =>
                {
                    task.Value = e.Step;
                    if (e.Kind == "step") task.Description = $"epoch {e.Epoch + 1} loss {e.Loss:F3}";
                    Print(e);
                };
                result = trainer.Run(resume);
                task.Value = trainer.TotalSteps;
            });
        return result!;
    }

    /// <summary>Overrides given as repeated --set key=value, plus the dedicated options.</summary>
    public static List<string> Overrides(string[]? sets, string? data, string? output, int? batchSize = null)
    {
        var o = new List<string>(sets ?? []);
        if (data is not null) o.Add($"data.path={System.Text.Json.Nodes.JsonValue.Create(data).ToJsonString()}");
        if (output is not null) o.Add($"output={System.Text.Json.Nodes.JsonValue.Create(output).ToJsonString()}");
        if (batchSize is int b) o.Add($"batch_size={b}");
        return o;
    }
}
