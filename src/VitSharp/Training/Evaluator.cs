using VitSharp.Checkpoints;
using VitSharp.Data.Datasets;
using VitSharp.Data.Transforms;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Training;

/// <summary>Top-1 / top-5 accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted).</summary>
public sealed record EvalResult(int Count, double Top1, double Top5, double Loss, int[,] Confusion, IReadOnlyList<string> Classes)
{
    /// <summary>The predicted class (argmax of the logits, first on ties) of each image, in the loader's order.</summary>
    public int[] Predictions { get; init; } = [];

    public double ClassAccuracy(int c)
    {
        int total = 0;
        for (int j = 0; j < Confusion.GetLength(1); j++) total += Confusion[c, j];
        return total == 0 ? double.NaN : (double)Confusion[c, c] / total;
    }
}

/// <summary>Top-1/top-5 accuracy and loss of a model over a data set.</summary>
public static class Evaluator
{
    /// <summary>
    /// The eval transform for a checkpoint: the preprocessing `vit classify` applies to it (<see cref="Recipes.Resolve"/>:
    /// its metadata's recipe, else its format's), or <paramref name="recipe"/>; <paramref name="mean"/>/<paramref name="std"/>
    /// replace the recipe's normalisation. A model whose input is not RGB gets the simple pipeline with that normalisation.
    /// </summary>
    public static Augmentation Preprocessing(Checkpoint ckpt, PreprocessRecipe? recipe = null, float[]? mean = null, float[]? std = null)
    {
        var r = Recipes.Resolve(ckpt, recipe).Preprocess!;
        static float[] Three(float[] v) => v.Length == 1 ? [v[0], v[0], v[0]] : v;
        if (mean is { Length: > 0 }) r = r with { Mean = Three(mean) };
        if (std is { Length: > 0 }) r = r with { Std = Three(std) };
        var c = ckpt.Config;
        float[] Fit(float[] v) => v.Length == c.InChannels ? v : v[..1];
        if (c.InChannels != 3)
            return new Augmentation { ImageSize = c.ImageSize, Channels = c.InChannels, Mean = Fit(r.Mean), Std = Fit(r.Std), Train = false };
        return new Augmentation { ImageSize = c.ImageSize, Channels = 3, Mean = r.Mean, Std = r.Std, Recipe = r, Train = false };
    }

    /// <summary>`vit eval`'s work: a checkpoint on a split of a labelled dataset, each image preprocessed exactly as
    /// `vit classify` would preprocess it for this checkpoint (<see cref="Preprocessing"/>); at most
    /// <paramref name="perClass"/> images per class when positive. Returns the result (with each image's prediction, in
    /// the dataset's order) and the class names (the checkpoint's, else the dataset's).</summary>
    public static (EvalResult Result, IReadOnlyList<string> Classes) EvaluateCheckpoint(string checkpoint, string data, string? split,
        int perClass, int batchSize, LoadOptions? options, Backends.IBackend backend, PreprocessRecipe? recipe = null,
        float[]? mean = null, float[]? std = null, Action<int, int>? progress = null, Tensors.DType? dtype = null, string? calibration = null,
        int calibrationImages = Fp8Calibration.DefaultImages)
    {
        var ckpt = Checkpoint.Load(checkpoint, options);
        var dataset = OpenSplit(data, split);
        if (perClass > 0) dataset = Subset.PerClass(dataset, perClass);
        dataset = LabelMap.Align(dataset, ckpt.Labels, ckpt.Config.NumClasses);
        var aug = Preprocessing(ckpt, recipe, mean, std);
        using var model = ckpt.CreateModel(backend);
        // As Classifier.Load: a quantised file runs as it is stored; DType.I8 / F8E4M3 quantise any other model.
        InferenceDType.Apply(model, ckpt, dtype, calibration, calibrationImages);
        var loader = new DataLoader(dataset, Math.Max(1, batchSize), aug, shuffle: false, dropLast: false, seed: 0);
        return (Evaluate(model, loader, progress), ckpt.Labels ?? dataset.Classes.ToArray());
    }

    /// <summary>The share of images two evaluations of the same data predict the same top-1 class for.</summary>
    public static double Agreement(EvalResult a, EvalResult b)
    {
        if (a.Predictions.Length != b.Predictions.Length || a.Predictions.Length == 0)
            throw new VitSharpException($"cannot compare {a.Predictions.Length} predictions with {b.Predictions.Length}");
        return (double)a.Predictions.Zip(b.Predictions).Count(p => p.First == p.Second) / a.Predictions.Length;
    }

    /// <summary>The split to evaluate: <paramref name="split"/> when given (or the test split of an idx folder), else the
    /// data's "test" split, else its "val" split, else the data itself.</summary>
    public static IImageDataset OpenSplit(string path, string? split)
    {
        if (split is not null || DataSources.IsIdxFolder(path)) return DataSources.Open(path, split ?? "test");
        foreach (var s in new[] { "test", "val" })
        {
            try { return DataSources.Open(path, s); }
            catch (VitSharpException) { }
        }
        return DataSources.Open(path, null);
    }

    /// <summary>Runs the inference forward over every batch of <paramref name="loader"/> (no augmentation).</summary>
    public static EvalResult Evaluate(VisionModel model, DataLoader loader, Action<int, int>? progress = null)
    {
        int k = model.Config.NumClasses;
        var confusion = new int[k, k];
        int n = 0, top1 = 0, top5 = 0, bi = 0;
        double lossSum = 0;
        var predictions = new List<int>();
        foreach (var batch in loader.Epoch(0))
        {
            var shape = new[] { batch.Count, model.Config.InChannels, model.Config.ImageSize, model.Config.ImageSize };
            var logits = model.Run(new Checkpoints.HostArray(shape, batch.Images)).Data;
            for (int b = 0; b < batch.Count; b++)
            {
                var row = logits.AsSpan(b * k, k);
                int label = batch.Labels[b];
                int better = 0, arg = 0;
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j < k; j++)
                {
                    if (row[j] > row[label]) better++;
                    if (row[j] > row[arg]) arg = j;
                    max = Math.Max(max, row[j]);
                }
                for (int j = 0; j < k; j++) sum += Math.Exp(row[j] - max);
                lossSum += max + Math.Log(sum) - row[label];
                predictions.Add(arg);
                if (arg == label) top1++;
                if (better < 5) top5++;
                if (label < k) confusion[label, arg]++;
                n++;
            }
            progress?.Invoke(++bi, loader.BatchesPerEpoch);
        }
        return new EvalResult(n, n == 0 ? 0 : (double)top1 / n, n == 0 ? 0 : (double)top5 / n, n == 0 ? 0 : lossSum / n, confusion, loader.Dataset.Classes)
        {
            Predictions = [.. predictions],
        };
    }
}
