using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Data.Codecs;
using VitSharp.Data.Transforms;
using VitSharp.Models;

namespace VitSharp.Inference;

/// <summary>One class of a classification: its index, name (when the model has class names), softmax probability and logit.</summary>
public sealed record Prediction(int Index, string? Label, float Probability, float Logit);

/// <summary>
/// The application-facing facade: load a checkpoint once, then classify images or embed them.
/// <code>using var c = Classifier.Load("vit.safetensors"); var top = c.Classify(ImageCodecs.Decode("cat.jpg"));</code>
/// </summary>
public sealed class Classifier : IDisposable
{
    private Classifier(Checkpoint checkpoint, VisionModel model, ModelMetadata metadata)
    {
        Checkpoint = checkpoint;
        Model = model;
        Metadata = metadata;
    }

    public Checkpoint Checkpoint { get; }
    public VisionModel Model { get; }
    /// <summary>What this classifier runs: the config, the preprocessing it applies, the class names.</summary>
    public ModelMetadata Metadata { get; }
    public PreprocessRecipe Recipe => Metadata.Preprocess!;
    public string[]? Labels => Metadata.Labels;

    public static Classifier Load(string path, LoadOptions? options = null, IBackend? backend = null,
        PreprocessRecipe? recipe = null, string[]? labels = null)
    {
        var ckpt = Checkpoint.Load(path, options);
        var metadata = Recipes.Resolve(ckpt, recipe, labels);
        var model = ckpt.CreateModel(backend ?? CpuBackend.Instance);
        model.PrepareForInference();   // weights never change in a Classifier
        return new Classifier(ckpt, model, metadata);
    }

    public IReadOnlyList<Prediction> Classify(Image image, int topK = 5) => ClassifyBatch([image], topK)[0];

    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(IReadOnlyList<Image> images, int topK = 5)
    {
        if (Model.Config.NumClasses == 0) throw new VitSharpException("this model has no classifier head (features only): use Embed");
        var logits = Run(images, OutputKind.Logits);
        int k = logits.Shape[1];
        var result = new List<IReadOnlyList<Prediction>>();
        for (int b = 0; b < images.Count; b++)
        {
            var row = logits.Data.AsSpan(b * k, k);
            if (k > 0 && System.Numerics.Tensors.TensorPrimitives.IndexOfMaxMagnitude(row) is var m && !float.IsFinite(row[m]))
                throw new VitSharpException($"the model's outputs are not finite ({row[m]} at class {m} for image {b}): " +
                    "its weights hold NaN/Inf (loaded with --allow-non-finite?) or its configuration is broken; no class is reported");
            float max = float.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (var v in row) sum += Math.Exp(v - max);
            var top = Enumerable.Range(0, k).OrderByDescending(i => logits.Data[b * k + i]).Take(Math.Min(topK, k))
                .Select(i => new Prediction(i, Labels?[i], (float)(Math.Exp(logits.Data[b * k + i] - max) / sum), logits.Data[b * k + i]))
                .ToList();
            result.Add(top);
        }
        return result;
    }

    /// <summary>Pooled features (B, F) of each image: the embedding before the head.</summary>
    public HostArray Embed(IReadOnlyList<Image> images) => Run(images, OutputKind.Pooled);

    public HostArray Run(IReadOnlyList<Image> images, OutputKind kind)
    {
        if (images.Count == 0) throw new InputException("no images");
        using var batch = Recipe.ApplyBatch(images);
        return Model.Run(new HostArray(batch.Shape, batch.ToArray()), kind);
    }

    /// <summary>Image files named directly, or found (by their first bytes) in the folders named.</summary>
    public static List<string> ExpandImagePaths(IEnumerable<string> paths)
    {
        var files = new List<string>();
        foreach (var p in paths)
        {
            if (Directory.Exists(p))
                files.AddRange(Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Where(IsImage));
            else if (File.Exists(p)) files.Add(p);
            else throw new VitSharpException($"{p}: no such file or folder");
        }
        return files;
    }

    private static bool IsImage(string path)
    {
        Span<byte> head = stackalloc byte[16];
        using var f = File.OpenRead(path);
        int n = f.Read(head);
        return ImageCodecs.FindDecoder(head[..n]) is not null;
    }

    public void Dispose() => Model.Dispose();
}
