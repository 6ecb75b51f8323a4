using System.CommandLine;
using Spectre.Console;
using VitSharp.Checkpoints;
using VitSharp.Data.Datasets;
using VitSharp.Training;

namespace VitSharp.Cli.Commands;

/// <summary>`vit eval`: top-1/top-5, per-class accuracy and the confusion matrix of a checkpoint on a labelled dataset.</summary>
public sealed class EvalCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions();
        var data = new Option<string>("--data") { Description = "dataset: image folder, .tar/.tar.gz archive, or idx folder", Required = true };
        var split = new Option<string?>("--split") { Description = "split inside the data (test, val); default: test, else val, else the data itself" };
        var batch = new Option<int>("--batch-size") { Description = "images per forward pass", DefaultValueFactory = _ => 64 };
        var perClass = new Option<int>("--per-class") { Description = "evaluate at most this many images per class (0: all)" };
        var mean = new Option<float[]?>("--mean") { Description = "normalisation mean per channel (default: what training stored, else 0.5)", AllowMultipleArgumentsPerToken = true };
        var std = new Option<float[]?>("--std") { Description = "normalisation std per channel", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("eval", "evaluate a checkpoint on a labelled dataset");
        ck.AddTo(cmd);
        foreach (var o in new Option[] { data, split, batch, perClass, mean, std }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var path = r.GetValue(ck.Checkpoint)!;
            var ckpt = Checkpoint.Load(path, ck.Load(r));
            var dataset = OpenSplit(r.GetValue(data)!, r.GetValue(split));
            if (r.GetValue(perClass) > 0) dataset = Subset.PerClass(dataset, r.GetValue(perClass));
            dataset = LabelMap.Align(dataset, ckpt.Labels, ckpt.Config.NumClasses);
            var stored = TrainCheckpoint.ReadNormalize(path);
            var aug = new Augmentation
            {
                ImageSize = ckpt.Config.ImageSize, Channels = ckpt.Config.InChannels,
                Mean = NonEmpty(r.GetValue(mean)) ?? stored?.Mean ?? [0.5f, 0.5f, 0.5f],
                Std = NonEmpty(r.GetValue(std)) ?? stored?.Std ?? [0.5f, 0.5f, 0.5f],
                Train = false,
            };
            // A model trained with a named recipe is evaluated with that recipe's eval transform (resize, centre crop).
            if (stored?.Recipe is { } recipe && r.GetValue(mean) is not { Length: > 0 })
                aug = aug with { Recipe = Data.Transforms.PreprocessRecipe.Named(recipe, ckpt.Config.ImageSize) };
            using var backend = ck.Backend(r);
            using var model = ckpt.CreateModel(backend);
            var loader = new DataLoader(dataset, r.GetValue(batch), aug, shuffle: false, dropLast: false, seed: 0);
            var res = Evaluator.Evaluate(model, loader);
            Print(res, ckpt.Labels ?? dataset.Classes.ToArray());
            return 0;
        }));
        return cmd;
    }

    private static float[]? NonEmpty(float[]? a) => a is { Length: > 0 } ? a : null;

    private static IImageDataset OpenSplit(string path, string? split)
    {
        if (split is not null || DataSources.IsIdxFolder(path)) return DataSources.Open(path, split ?? "test");
        foreach (var s in new[] { "test", "val" })
        {
            try { return DataSources.Open(path, s); }
            catch (VitSharpException) { }
        }
        return DataSources.Open(path, null);
    }

    private static void Print(EvalResult r, IReadOnlyList<string> names)
    {
        Console.WriteLine($"images {r.Count}  top-1 {r.Top1:P2}  top-5 {r.Top5:P2}  loss {r.Loss:F4}");
        int k = r.Confusion.GetLength(0);
        var perClass = new Table().AddColumn("class").AddColumn("accuracy").AddColumn("images");
        for (int c = 0; c < k; c++)
        {
            int n = 0;
            for (int j = 0; j < k; j++) n += r.Confusion[c, j];
            if (n > 0) perClass.AddRow(Markup.Escape(c < names.Count ? names[c] : c.ToString()), $"{r.ClassAccuracy(c):P1}", n.ToString());
        }
        AnsiConsole.Write(perClass);
        if (k > 20) return; // a confusion matrix wider than a terminal says little
        var m = new Table().AddColumn("true \\ predicted");
        for (int j = 0; j < k; j++) m.AddColumn(j.ToString());
        for (int c = 0; c < k; c++)
            m.AddRow(new[] { $"{c} {Markup.Escape(c < names.Count ? names[c] : "")}" }.Concat(Enumerable.Range(0, k).Select(j => r.Confusion[c, j].ToString())).ToArray());
        AnsiConsole.Write(m);
    }
}
