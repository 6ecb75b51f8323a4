using VitSharp.Checkpoints;
using VitSharp.Data.Datasets;
using VitSharp.Models;
using VitSharp.Training;

namespace VitSharp.Inference;

/// <summary>
/// FP8 inference set up from a floating-point checkpoint (docs/QUANTIZATION.md, FP8): the input scale of each block
/// Linear is calibrated on representative images — max |x| over them, mapped onto E4M3's ±448 — then
/// <see cref="VisionModel.UseFp8(IReadOnlyDictionary{string, float}, IReadOnlyDictionary{string, ValueTuple{byte[], float}}?)"/> quantises the weights per tensor. Static scales, as Transformer Engine's and
/// TensorRT's FP8 inference use them: no reduction over the activations at run time.
/// </summary>
public static class Fp8Calibration
{
    /// <summary>Images calibrated on unless told otherwise.</summary>
    public const int DefaultImages = 256;

    /// <summary>Up to <paramref name="images"/> images of <paramref name="path"/> (its train split when it has one, else
    /// all of it), in a seeded shuffled order, preprocessed as <c>vit eval</c> preprocesses them for this checkpoint.</summary>
    public static IEnumerable<HostArray> Batches(Checkpoint ckpt, string path, int images = DefaultImages, int batchSize = 32)
    {
        if (images <= 0) throw new VitSharpException($"FP8 calibration: {images} images (must be positive)");
        IImageDataset ds;
        try { ds = DataSources.Open(path, "train"); }
        catch (VitSharpException) { ds = DataSources.Open(path, null); }
        var c = ckpt.Config;
        var loader = new DataLoader(ds, Math.Min(batchSize, images), Evaluator.Preprocessing(ckpt), shuffle: true, dropLast: false, seed: 0);
        int left = images;
        foreach (var b in loader.Epoch(0))
        {
            int n = Math.Min(b.Count, left);
            int per = c.InChannels * c.ImageSize * c.ImageSize;
            yield return new HostArray([n, c.InChannels, c.ImageSize, c.ImageSize], b.Images.AsSpan(0, n * per).ToArray());
            left -= n;
            if (left == 0) yield break;
        }
    }

    /// <summary>Calibrates <paramref name="model"/> on <paramref name="calibration"/> and switches it to FP8; returns the
    /// number of layers that run FP8.</summary>
    public static int Apply(VisionModel model, Checkpoint ckpt, string? calibration, int images = DefaultImages)
    {
        if (calibration is null)
            throw new VitSharpException("--dtype fp8 needs --calibration IMAGES: a folder or archive of representative images (its train split is used when it has one) to set the activation scales");
        var absMax = model.CalibrateInputs(Batches(ckpt, calibration, images));
        return model.UseFp8(absMax);
    }
}
