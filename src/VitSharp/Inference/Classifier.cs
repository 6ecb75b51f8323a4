using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Data.Codecs;
using VitSharp.Data.Transforms;
using VitSharp.Models;
using System.Numerics.Tensors;
using Tensor = System.Numerics.Tensors.Tensor;

namespace VitSharp.Inference;

/// <summary>One class of a classification: its index, name (when the model has class names), softmax probability and logit.</summary>
public sealed record Prediction(int Index, string? Label, float Probability, float Logit);

/// <summary>
/// The application-facing facade: load a checkpoint once, then classify images or embed them. Thread-safe: one
/// instance can serve many callers (forward passes are serialised per model).
/// <code>using var c = Classifier.Load("vit.safetensors"); var top = c.Classify(File.ReadAllBytes("cat.jpg"));</code>
/// Images come as <see cref="Image"/>, encoded bytes or a <see cref="Stream"/>; preprocessed input and the outputs are
/// also available as System.Numerics.Tensors <see cref="Tensor{T}"/> or spans (NCHW floats, as ONNX Runtime takes them).
/// See docs/CSHARP.md.
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

    /// <summary>Loads a checkpoint for inference. <c>dtype</c> <see cref="Tensors.DType.I8"/> runs int8
    /// (<see cref="VisionModel.UseInt8"/>, CPU), <see cref="Tensors.DType.F8E4M3"/> FP8 (CUDA; a floating-point checkpoint
    /// then needs <paramref name="calibration"/> images, of which <paramref name="calibrationImages"/> set the input
    /// scales); null, the backend's compute type. A quantised checkpoint runs as it is stored: int8, or FP8 where the
    /// device can (its dequantised weights elsewhere). <see cref="InferenceDType.Apply"/> has the whole rule.</summary>
    public static Classifier Load(string path, LoadOptions? options = null, IBackend? backend = null,
        PreprocessRecipe? recipe = null, string[]? labels = null, Tensors.DType? dtype = null, string? calibration = null,
        int calibrationImages = Fp8Calibration.DefaultImages)
    {
        // A safetensors file is mapped (unless the options say otherwise): the weights are packed from its pages, and
        // the classifier holds the mapping until it is disposed (docs/ARCHITECTURE.md, "Memory and cold start").
        options ??= new LoadOptions();
        var ckpt = Checkpoint.Load(path, options.MapWeights is null ? options with { MapWeights = true } : options);
        try
        {
            var metadata = Recipes.Resolve(ckpt, recipe, labels);
            var model = VisionModel.Create(ckpt.Config, backend ?? CpuBackend.Instance);
            try
            {
                // Weights never change in a Classifier: packed for inference. A quantised file runs as it is stored;
                // DType.I8 / F8E4M3 quantise any other model on load (InferenceDType has the whole rule).
                InferenceDType.Validate(model.Backend, ckpt, dtype);
                model.LoadForInference(ckpt.Weights, ckpt.Path, int8: dtype == Tensors.DType.I8, stored: ckpt.Int8Weights);
                InferenceDType.Apply(model, ckpt, dtype, calibration, calibrationImages);
            }
            catch { model.Dispose(); throw; }
            return new Classifier(ckpt, model, metadata);
        }
        catch { ckpt.Dispose(); throw; }
    }

    /// <summary>The <paramref name="topK"/> most likely classes of one image, most likely first.</summary>
    public IReadOnlyList<Prediction> Classify(Image image, int topK = 5) => ClassifyBatch([image], topK)[0];

    /// <summary>Decodes an encoded image (PNG, JPEG, BMP, PPM… recognised by its first bytes) and classifies it.</summary>
    /// <param name="encoded">the file's bytes.</param>
    /// <param name="topK">how many classes to return.</param>
    /// <param name="name">what a decoding error calls the image.</param>
    public IReadOnlyList<Prediction> Classify(byte[] encoded, int topK = 5, string name = "image") =>
        Classify(ImageCodecs.Decode(encoded, name), topK);

    /// <summary>Reads an encoded image from <paramref name="stream"/> (to its end, within the decoder's size limit) and classifies it.</summary>
    /// <param name="stream">an encoded image: a file, a request body, a resource.</param>
    /// <param name="topK">how many classes to return.</param>
    /// <param name="name">what a decoding error calls the image.</param>
    public IReadOnlyList<Prediction> Classify(Stream stream, int topK = 5, string name = "stream") =>
        Classify(ImageCodecs.Decode(stream, name), topK);

    /// <summary>The <paramref name="topK"/> most likely classes of each image of a batch, in the batch's order.</summary>
    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(IReadOnlyList<Image> images, int topK = 5)
    {
        RequireHead();
        return Predictions(Run(images, OutputKind.Logits), topK);
    }

    /// <summary>Classifies already preprocessed input (B, C, H, W), e.g. from <see cref="Preprocess(IReadOnlyList{Image})"/>.</summary>
    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(ReadOnlyTensorSpan<float> input, int topK = 5)
    {
        RequireHead();
        return Predictions(Model.Run(ToHost(input), OutputKind.Logits), topK);
    }

    private void RequireHead()
    {
        if (Model.Config.NumClasses == 0) throw new VitSharpException("this model has no classifier head (features only): use Embed");
    }

    /// <summary>Softmax and top-k of each row of logits (B, K).</summary>
    private List<IReadOnlyList<Prediction>> Predictions(HostArray logits, int topK)
    {
        int k = logits.Shape[1];
        var result = new List<IReadOnlyList<Prediction>>();
        for (int b = 0; b < logits.Shape[0]; b++)
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

    /// <summary>Pooled features (F) of one image.</summary>
    public float[] Embed(Image image) => Embed([image]).Data;

    /// <summary>Pooled features (F) of an encoded image (PNG, JPEG, BMP, PPM…); <paramref name="name"/> is what a decoding error calls it.</summary>
    public float[] Embed(byte[] encoded, string name = "image") => Embed(ImageCodecs.Decode(encoded, name));

    /// <summary>Pooled features (F) of an encoded image read from <paramref name="stream"/> to its end.</summary>
    public float[] Embed(Stream stream, string name = "stream") => Embed(ImageCodecs.Decode(stream, name));

    /// <summary>Preprocesses the images as the model expects and runs them: logits (B, K), pooled features (B, F) or tokens (B, T, D).</summary>
    public HostArray Run(IReadOnlyList<Image> images, OutputKind kind) => Model.Run(PreprocessHost(images), kind);

    /// <summary>The model's input for these images, (B, C, H, W) floats: resized, cropped and normalised by <see cref="Recipe"/>.</summary>
    public Tensor<float> Preprocess(IReadOnlyList<Image> images) => ToTensor(PreprocessHost(images));

    /// <summary>The model's input for one image, (1, C, H, W).</summary>
    public Tensor<float> Preprocess(Image image) => Preprocess([image]);

    /// <summary>
    /// Runs preprocessed input (B, C, H, W) — any strides — and returns the output kind asked for: logits (B, K), pooled
    /// features (B, F) or tokens (B, T, D). A shape the model does not take is an <see cref="InputException"/>.
    /// </summary>
    public Tensor<float> Run(ReadOnlyTensorSpan<float> input, OutputKind kind = OutputKind.Logits) => ToTensor(Model.Run(ToHost(input), kind));

    /// <inheritdoc cref="Run(ReadOnlyTensorSpan{float}, OutputKind)"/>
    public Tensor<float> Run(Tensor<float> input, OutputKind kind = OutputKind.Logits) => Run(input.AsReadOnlyTensorSpan(), kind);

    /// <summary>
    /// Runs B preprocessed images given as contiguous NCHW floats (B·C·H·W of them; B follows from the length) and writes
    /// the output kind asked for into <paramref name="destination"/>, row after row.
    /// </summary>
    /// <returns>How many floats were written: B × (classes, features or tokens × width).</returns>
    public int Run(ReadOnlySpan<float> input, Span<float> destination, OutputKind kind = OutputKind.Logits)
    {
        var c = Model.Config;
        int per = c.InChannels * c.ImageSize * c.ImageSize;
        if (input.Length == 0 || input.Length % per != 0)
            throw new InputException($"input has {input.Length} floats, not a positive multiple of C·H·W = {c.InChannels}·{c.ImageSize}·{c.ImageSize} = {per}");
        var output = Model.Run(new HostArray([input.Length / per, c.InChannels, c.ImageSize, c.ImageSize], input.ToArray()), kind);
        if (destination.Length < output.Data.Length)
            throw new InputException($"the destination holds {destination.Length} floats but the output {Tensors.Shape.Format(output.Shape)} has {output.Data.Length}");
        output.Data.CopyTo(destination);
        return output.Data.Length;
    }

    private HostArray PreprocessHost(IReadOnlyList<Image> images)
    {
        if (images.Count == 0) throw new InputException("no images");
        using var batch = Recipe.ApplyBatch(images);
        return new HostArray(batch.Shape, batch.ToArray());
    }

    private static HostArray ToHost(ReadOnlyTensorSpan<float> input)
    {
        var shape = new int[input.Rank];
        for (int i = 0; i < shape.Length; i++) shape[i] = checked((int)input.Lengths[i]);
        if (shape.Length != 4) throw new InputException($"input has rank {shape.Length} ({Tensors.Shape.Format(shape)}) but the model takes (B, C, H, W)");
        var data = new float[input.FlattenedLength];
        input.FlattenTo(data);
        return new HostArray(shape, data);
    }

    private static Tensor<float> ToTensor(HostArray a) => Tensor.Create(a.Data, [.. a.Shape.Select(d => (nint)d)]);

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

    public void Dispose()
    {
        Model.Dispose();
        Checkpoint.Dispose();
    }
}
