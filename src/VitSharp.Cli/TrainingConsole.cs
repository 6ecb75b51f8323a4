using Spectre.Console;
using VitSharp.Training;

namespace VitSharp.Cli;

/// <summary>Runs a trainer under a Spectre.Console progress bar (steps, ETA) and prints each log line and evaluation.</summary>
public static class TrainingConsole
{
    /// <summary>One grey line per data set: how many images, and whether and how fast they were cached in memory.</summary>
    public static void DescribeData(Data.Datasets.IImageDataset train, Data.Datasets.IImageDataset? val)
    {
        foreach (var (name, d) in new[] { ("train", train), ("val", val) })
            if (d is Data.Datasets.CachedDataset c)
                AnsiConsole.MarkupLine($"[grey]{name}: {c.Count} images decoded into memory in {c.DecodeTime.TotalSeconds:F1} s ({c.Bytes / 1e6:F0} MB)[/]");
            else if (d is not null)
                AnsiConsole.MarkupLine($"[grey]{name}: {d.Count} images, decoded every epoch[/]");
    }

    public static TrainResult Run(Trainer trainer, bool resume)
    {
        TrainResult? result = null;
        AnsiConsole.MarkupLine($"[grey]{trainer.TotalSteps} steps ({trainer.StepsPerEpoch} per epoch); model {Markup.Escape(trainer.Model.Config.ToJson().ToJsonString())}[/]");
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("train", maxValue: trainer.TotalSteps);
                trainer.OnEvent = e =>
                {
                    task.Value = e.Step;
                    switch (e.Kind)
                    {
                        case "step":
                            task.Description = $"epoch {e.Epoch} loss {e.Loss:F3}";
                            AnsiConsole.MarkupLine($"step {e.Step}/{e.TotalSteps}  loss {e.Loss:F4}  acc {e.Accuracy:P1}  lr {e.Lr:G3}  {e.ImagesPerSecond:F0} img/s  |g| {e.GradNorm:F2}");
                            break;
                        case "eval":
                            AnsiConsole.MarkupLine($"[green]eval after epoch {e.Epoch}: top-1 {e.Eval!.Top1:P2}  top-5 {e.Eval.Top5:P2}  loss {e.Eval.Loss:F4}  ({e.Eval.Count} images)[/]");
                            break;
                        case "eval_ema":
                            AnsiConsole.MarkupLine($"[green]  EMA weights: top-1 {e.Eval!.Top1:P2}  top-5 {e.Eval.Top5:P2}[/]");
                            break;
                        case "checkpoint":
                            AnsiConsole.MarkupLine($"[grey]checkpoint at step {e.Step}: {Markup.Escape(e.Path ?? "")}[/]");
                            break;
                    }
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
