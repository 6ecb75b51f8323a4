using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Inference;

/// <summary>What <see cref="Quantization.QuantizeFile"/> or <see cref="Quantization.QuantizeFileFp8"/> wrote: the scheme,
/// the quantised tensors and their values (1 byte each), the values left F32, the file sizes, and (FP8) how many images
/// set the input scales (0: the input file's own were kept).</summary>
public sealed record QuantizeReport(string Output, QuantizationScheme Scheme, int Tensors, long QuantizedParameters, long FloatParameters,
    long InputBytes, long OutputBytes, int CalibrationImages = 0);

/// <summary>
/// Post-training int8 quantisation (docs/QUANTIZATION.md). Weights: symmetric per output channel
/// (<see cref="Int8Matrix.QuantizeRows"/>), for the blocks' Linear layers (<see cref="VisionModel.Int8Targets"/>).
/// Activations: per token at run time (<c>Int8Gemm</c>), so no calibration data is needed: each row's scale is its own
/// max |x| / 127, which is what a calibrated static scale approximates. A quantised file is a safetensors file whose
/// int8 weights are I8 tensors with an F32 <c>NAME_scale</c> beside each, and whose <c>vitsharp.model</c> record has a
/// <c>quantization</c> entry (<see cref="QuantizationInfo"/>); <see cref="Classifier.Load"/> runs it int8. The FP8 files
/// (<see cref="QuantizeFileFp8"/>) are written the same way: F8_E4M3 weights, an F32 scalar <c>M.weight_scale</c> and
/// <c>M.input_scale</c> beside each.
/// </summary>
public static class Quantization
{
    /// <summary>Reads a checkpoint (any format VitSharp reads), quantises it and writes <paramref name="output"/> atomically.</summary>
    public static QuantizeReport QuantizeFile(string input, string output, LoadOptions? options = null)
    {
        var ckpt = Checkpoint.Load(input, options);
        var metadata = Recipes.Resolve(ckpt, null, null);
        using var model = ckpt.CreateModel(Backends.Cpu.CpuBackend.Instance);
        var (int8, floats) = Write(model, metadata, output, ckpt.Int8Weights);
        long inBytes = File.Exists(input) ? new FileInfo(input).Length : 0;
        return new QuantizeReport(output, QuantizationScheme.Int8, model.Int8Targets.Count(), int8, floats, inBytes, new FileInfo(output).Length);
    }

    /// <summary>
    /// Reads a checkpoint, calibrates its blocks' Linear inputs on <paramref name="images"/> images of
    /// <paramref name="calibration"/> (<see cref="Fp8Calibration.Batches"/>, preprocessed as `vit eval` does; the model's
    /// own forward on the CPU, in f32) and writes <paramref name="output"/> atomically as an FP8 file
    /// (<see cref="WriteFp8"/>). An FP8 input file keeps its codes and weight scales, and its input scales too when
    /// <paramref name="calibration"/> is null (so re-quantising it rewrites the same bytes); any other input needs
    /// <paramref name="calibration"/>.
    /// </summary>
    public static QuantizeReport QuantizeFileFp8(string input, string output, string? calibration, int images = Fp8Calibration.DefaultImages,
        LoadOptions? options = null)
    {
        var ckpt = Checkpoint.Load(input, options);
        var metadata = Recipes.Resolve(ckpt, null, null);
        using var model = ckpt.CreateModel(Backends.Cpu.CpuBackend.Instance);
        IReadOnlyDictionary<string, float>? inputScales = null;
        int calibrated = 0;
        if (calibration is not null)
        {
            model.PrepareForInference();   // calibration is inference: the CPU's packed weights make it faster
            var batches = Fp8Calibration.Batches(ckpt, calibration, images).Select(b => { calibrated += b.Shape[0]; return b; });
            inputScales = model.CalibrateInputs(batches).ToDictionary(kv => kv.Key, kv => Fp8.ScaleFor(kv.Value), StringComparer.Ordinal);
        }
        else if (ckpt.Fp8Weights is { } kept) inputScales = kept.ToDictionary(kv => kv.Key, kv => kv.Value.InputScale, StringComparer.Ordinal);
        else throw new VitSharpException("vit quantize --dtype fp8 needs --calibration IMAGES: a folder or archive of representative images (its train split is used when it has one) to set the activation scales");
        var (fp8, floats) = WriteFp8(model, metadata, output, inputScales, ckpt.Fp8Weights);
        long inBytes = File.Exists(input) ? new FileInfo(input).Length : 0;
        return new QuantizeReport(output, QuantizationScheme.Fp8, model.Int8Targets.Count(), fp8, floats, inBytes, new FileInfo(output).Length, calibrated);
    }

    /// <summary>Writes a model's parameters as an FP8 file: each of <see cref="VisionModel.Int8Targets"/> as F8_E4M3
    /// codes (from <paramref name="stored"/> when given, else <see cref="Fp8.Quantize"/>: one scale per tensor, max |w| / 448)
    /// with F32 scalars <c>M.weight_scale</c> and <c>M.input_scale</c> (<paramref name="inputScales"/>, one per target:
    /// max |x| / 448, <see cref="Fp8.ScaleFor"/>); everything else F32. Returns the parameter counts.</summary>
    public static (long Fp8Parameters, long FloatParameters) WriteFp8(VisionModel model, ModelMetadata metadata, string path,
        IReadOnlyDictionary<string, float> inputScales, IReadOnlyDictionary<string, Fp8Weight>? stored = null)
    {
        var targets = model.Int8Targets.ToHashSet(StringComparer.Ordinal);
        if (targets.Count == 0) throw new VitSharpException("this model has no block Linear layers to quantise");
        var tensors = new Dictionary<string, HostArray>(StringComparer.Ordinal);
        var dtypes = new Dictionary<string, string>(StringComparer.Ordinal);
        long fp8 = 0, floats = 0;
        void Scalar(string name, float value)
        {
            if (!(value > 0) || !float.IsFinite(value)) throw new VitSharpException($"FP8: scale {value} of {name} is not a finite positive number");
            tensors[name] = new HostArray([], [value]);
            dtypes[name] = "F32";
        }
        foreach (var (name, shape, _) in model.Parameters.Layout)
        {
            if (!targets.Contains(name))
            {
                floats += AddF32(model, name, shape, tensors, dtypes);
                continue;
            }
            if (!inputScales.TryGetValue(name, out var inputScale)) throw new VitSharpException($"FP8: no input scale for {name}");
            var (codes, scale) = stored is not null && stored.TryGetValue(name, out var st)
                ? (st.Codes, st.Scale) : Fp8.Quantize(model.HostFloats(model.Parameters[name]));
            var values = new float[codes.Length];
            for (int i = 0; i < codes.Length; i++) values[i] = Fp8.ToFloat(codes[i]);   // the writer stores each as its code
            tensors[name] = new HostArray(shape, values);
            dtypes[name] = QuantizationInfo.Fp8DType;
            Scalar(name + QuantizationInfo.ScaleSuffix, scale);
            Scalar(QuantizationInfo.InputScaleName(name), inputScale);
            fp8 += codes.Length;
        }
        var md = metadata with { Quantization = new QuantizationInfo { Scheme = QuantizationScheme.Fp8, Tensors = [.. targets.Order(StringComparer.Ordinal)] } };
        SafeTensors.Write(path, tensors, md.ToSafeTensorsMetadata(), n => dtypes[n]);
        return (fp8, floats);
    }

    /// <summary>A parameter the quantised file keeps in F32; returns its value count.</summary>
    private static long AddF32(VisionModel model, string name, int[] shape, Dictionary<string, HostArray> tensors, Dictionary<string, string> dtypes)
    {
        var data = model.HostFloats(model.Parameters[name]);
        tensors[name] = new HostArray(shape, data);
        dtypes[name] = "F32";
        return data.Length;
    }

    /// <summary>Writes a model's parameters as a quantised file: <see cref="VisionModel.Int8Targets"/> as I8 + scales
    /// (from <paramref name="stored"/> when given, else quantised now), everything else F32. Returns the parameter counts.</summary>
    public static (long Int8Parameters, long FloatParameters) Write(VisionModel model, ModelMetadata metadata, string path,
        IReadOnlyDictionary<string, (sbyte[] Values, float[] Scales)>? stored = null)
    {
        var targets = model.Int8Targets.ToHashSet(StringComparer.Ordinal);
        if (targets.Count == 0) throw new VitSharpException("this model has no block Linear layers to quantise");
        var tensors = new Dictionary<string, HostArray>(StringComparer.Ordinal);
        var dtypes = new Dictionary<string, string>(StringComparer.Ordinal);
        long int8 = 0, floats = 0;
        foreach (var (name, shape, _) in model.Parameters.Layout)
        {
            if (!targets.Contains(name))
            {
                floats += AddF32(model, name, shape, tensors, dtypes);
                continue;
            }
            // a stored int8 copy is written as it is: its fp32 weights need not leave the backend
            var (q, s) = stored is not null && stored.TryGetValue(name, out var st)
                ? st : Int8Matrix.QuantizeRows(model.HostFloats(model.Parameters[name]), shape[0], shape[1]);
            tensors[name] = new HostArray(shape, q.Select(v => (float)v).ToArray());
            dtypes[name] = "I8";
            tensors[name + QuantizationInfo.ScaleSuffix] = new HostArray([shape[0]], s);
            dtypes[name + QuantizationInfo.ScaleSuffix] = "F32";
            int8 += q.Length;
        }
        var md = metadata with { Quantization = new QuantizationInfo { Tensors = [.. targets.Order(StringComparer.Ordinal)] } };
        SafeTensors.Write(path, tensors, md.ToSafeTensorsMetadata(), n => dtypes[n]);
        return (int8, floats);
    }
}
