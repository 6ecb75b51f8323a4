using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Inference;

/// <summary>
/// What `--dtype` and a quantised checkpoint make of a loaded model, the one rule the inference commands (classify, run,
/// serve, eval) and <see cref="Classifier.Load"/> share (docs/QUANTIZATION.md):
/// <list type="bullet">
/// <item>an int8 file runs int8 (<see cref="VisionModel.UseInt8"/>, CPU), whatever is asked but fp8;</item>
/// <item>an FP8 file runs its stored codes and scales (<see cref="VisionModel.UseFp8(IReadOnlyDictionary{string, Fp8Weight})"/>)
/// where the backend runs FP8 products (CUDA, compute capability 8.9+, bf16 compute); elsewhere — the CPU, an older GPU —
/// its dequantised weights (code · scale) in the backend's compute type, a well-defined fallback; <c>--dtype fp8</c>
/// insists on FP8 (an error where it cannot run);</item>
/// <item>any other checkpoint: <see cref="DType.I8"/> quantises on load, <see cref="DType.F8E4M3"/> calibrates its input
/// scales on the images of <c>calibration</c> (<see cref="Fp8Calibration"/>), anything else leaves it as it is;</item>
/// <item><see cref="DType.F32"/> or <see cref="DType.BF16"/> asked explicitly runs any checkpoint in floating point
/// (a quantised file's dequantised weights): what <c>vit eval --agreement</c> compares with.</item>
/// </list>
/// </summary>
public static class InferenceDType
{
    /// <summary>Applies the rule above to <paramref name="model"/>, built from <paramref name="ckpt"/>.</summary>
    public static void Apply(VisionModel model, Checkpoint ckpt, DType? dtype, string? calibration = null,
        int calibrationImages = Fp8Calibration.DefaultImages)
    {
        if (dtype is DType.F32 or DType.BF16) return;
        Validate(model.Backend, ckpt, dtype);
        // a model loaded with VisionModel.LoadForInference(int8: …) already runs int8
        if (ckpt.Int8Weights is { } int8)
        {
            if (!model.IsInt8) model.UseInt8(int8);
            return;
        }
        if (ckpt.Fp8Weights is { } fp8)
        {
            if (dtype == DType.F8E4M3) Count(model.UseFp8(fp8), ckpt);
            else if (RunsFp8(model.Backend, out _)) model.UseFp8(fp8);   // a shape FP8 cannot take stays bf16
            return;
        }
        if (dtype == DType.I8) { if (!model.IsInt8) model.UseInt8(); }
        else if (dtype == DType.F8E4M3) Count(Fp8Calibration.Apply(model, ckpt, calibration, calibrationImages), ckpt);
    }

    /// <summary>The combinations <see cref="Apply"/> refuses, checked before any weight is loaded: an int8 file with
    /// --dtype fp8, an FP8 file with --dtype int8, --dtype fp8 where the device has no FP8 products (checked before
    /// calibrating, which would otherwise be wasted).</summary>
    public static void Validate(IBackend backend, Checkpoint ckpt, DType? dtype)
    {
        if (ckpt.Int8Weights is not null && dtype == DType.F8E4M3)
            throw new VitSharpException($"{ckpt.Path} is an int8 checkpoint: --dtype fp8 needs a floating-point or FP8 one (vit quantize --dtype fp8 the original)");
        if (ckpt.Fp8Weights is not null && dtype == DType.I8)
            throw new VitSharpException($"{ckpt.Path} is an FP8 checkpoint: --dtype int8 needs a floating-point or int8 one (vit quantize the original)");
        if (dtype == DType.F8E4M3 && !RunsFp8(backend, out var why)) throw new VitSharpException(why);
    }

    /// <summary>Whether <paramref name="backend"/> runs FP8 products; <paramref name="reason"/> says why not.</summary>
    public static bool RunsFp8(IBackend backend, out string reason)
    {
        if (backend is IFp8Linear q) return q.SupportsFp8(out reason);
        reason = $"FP8 inference runs on CUDA GPUs only, not on {backend.Device}";
        return false;
    }

    /// <summary>--dtype fp8 asked for FP8 products: a model none of whose layers can take them is an error.</summary>
    private static void Count(int layers, Checkpoint ckpt)
    {
        if (layers == 0) throw new VitSharpException($"{ckpt.Path}: no Linear layer of this model can run FP8 (every shape stays bf16)");
    }

    /// <summary>The quantisation scheme a safetensors file's <c>vitsharp.model</c> record states, from its header alone;
    /// null for any other file (or folder).</summary>
    public static QuantizationScheme? SchemeOf(string path)
    {
        if (!File.Exists(path) || !SafeTensors.LooksLike(path)) return null;
        var (_, meta, _) = SafeTensors.ReadHeader(path);
        return ModelMetadata.Read(meta, path)?.Quantization?.Scheme;
    }
}
