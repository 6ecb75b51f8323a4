using System.CommandLine;
using Spectre.Console;
using VitSharp.Inference;
using VitSharp.Training;

namespace VitSharp.Cli.Commands;

/// <summary>`vit eval`: top-1/top-5, per-class accuracy and the confusion matrix of a checkpoint on a labelled dataset.</summary>
public sealed class EvalCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions(defaultModel: true);
        var data = new Option<string>("--data") { Description = "dataset: image folder, .tar/.tar.gz archive, or idx folder", Required = true };
        var split = new Option<string?>("--split") { Description = "split inside the data (test, val); default: test, else val, else the data itself" };
        var batch = SharedOptions.BatchSize(64);
        var perClass = new Option<int>("--per-class") { Description = "evaluate at most this many images per class (0: all)" };
        var mean = new Option<float[]?>("--mean") { Description = "normalisation mean per channel (default: what the checkpoint states)", AllowMultipleArgumentsPerToken = true };
        var std = new Option<float[]?>("--std") { Description = "normalisation std per channel", AllowMultipleArgumentsPerToken = true };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing: timm, google, hf, or a recipe .json (default: what fits the checkpoint, as for classify)" };
        var cmd = new Command("eval", "evaluate a checkpoint on a labelled dataset");
        var agreement = new Option<bool>("--agreement") { Description = "also run int8 (or, with --dtype int8 or a quantised file, f32; with --dtype fp8, or an FP8 file on a GPU that runs it, bf16) and report how often the two top-1 agree" };
        ck.AddTo(cmd);
        ck.AddDType(cmd);
        foreach (var o in new Option[] { data, split, batch, perClass, mean, std, recipe, agreement }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            using var backend = ck.Backend(r);
            (EvalResult, IReadOnlyList<string>) Eval(Tensors.DType? dt) => Evaluator.EvaluateCheckpoint(ck.CheckpointPath(r), r.GetValue(data)!, r.GetValue(split),
                r.GetValue(perClass), r.GetValue(batch), ck.Load(r), backend, ClassifyCommand.RecipeOption(r.GetValue(recipe)), r.GetValue(mean), r.GetValue(std), dtype: dt,
                calibration: r.GetValue(ck.Calibration), calibrationImages: ck.CalibrationImageCount(r));
            var (res, names) = Eval(ck.DType(r));
            Print(res, names);
            // an FP8 file runs FP8 on a capable GPU without --dtype fp8: compared with its dequantised weights then
            bool fp8 = ck.DType(r) == Tensors.DType.F8E4M3 || InferenceDType.SchemeOf(ck.CheckpointPath(r)) == Checkpoints.QuantizationScheme.Fp8 && InferenceDType.RunsFp8(backend, out _);
            if (r.GetValue(agreement) && fp8)
            {
                var (other, _) = Eval(backend.ComputeType);
                Console.WriteLine($"{other.Count} images in {backend.ComputeType.ToString().ToLowerInvariant()}: top-1 {other.Top1:P2}  top-5 {other.Top5:P2}  agreement with fp8 {Evaluator.Agreement(res, other):P2}");
            }
            else if (r.GetValue(agreement))
            {
                if (ck.DType(r) == Tensors.DType.I8) throw new VitSharpException("--agreement compares with int8: leave out --dtype int8 (f32 runs first)");
                var (other, _) = Eval(Tensors.DType.I8);
                var a = Evaluator.Agreement(res, other);
                Console.WriteLine($"int8: images {other.Count}  top-1 {other.Top1:P2}  top-5 {other.Top5:P2}  agreement with f32 {a:P2}");
            }
            return 0;
        }));
        return cmd;
    }

    private static void Print(EvalResult r, IReadOnlyList<string> names)
    {
        var console = Terminal.Create();
        Console.WriteLine($"images {r.Count}  top-1 {r.Top1:P2}  top-5 {r.Top5:P2}  loss {r.Loss:F4}");
        int k = r.Confusion.GetLength(0);
        var perClass = new Table().AddColumn("class").AddColumn("accuracy").AddColumn("images");
        for (int c = 0; c < k; c++)
        {
            int n = 0;
            for (int j = 0; j < k; j++) n += r.Confusion[c, j];
            if (n > 0) perClass.AddRow(Markup.Escape(c < names.Count ? names[c] : c.ToString()), $"{r.ClassAccuracy(c):P1}", n.ToString());
        }
        console.Write(perClass);
        if (k > 20) return; // a confusion matrix wider than a terminal says little
        var m = new Table().AddColumn("true \\ predicted");
        for (int j = 0; j < k; j++) m.AddColumn(j.ToString());
        for (int c = 0; c < k; c++)
            m.AddRow(new[] { $"{c} {Markup.Escape(c < names.Count ? names[c] : "")}" }.Concat(Enumerable.Range(0, k).Select(j => r.Confusion[c, j].ToString())).ToArray());
        console.Write(m);
    }
}
