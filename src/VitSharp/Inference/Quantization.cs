using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Inference;

/// <summary>What <see cref="Quantization.QuantizeFile"/> wrote.</summary>
public sealed record QuantizeReport(string Output, int Tensors, long Int8Parameters, long FloatParameters, long InputBytes, long OutputBytes);

/// <summary>
/// Post-training int8 quantisation (docs/QUANTIZATION.md). Weights: symmetric per output channel
/// (<see cref="Int8Matrix.QuantizeRows"/>), for the blocks' Linear layers (<see cref="VisionModel.Int8Targets"/>).
/// Activations: per token at run time (<c>Int8Gemm</c>), so no calibration data is needed: each row's scale is its own
/// max |x| / 127, which is what a calibrated static scale approximates. A quantised file is a safetensors file whose
/// int8 weights are I8 tensors with an F32 <c>NAME_scale</c> beside each, and whose <c>vitsharp.model</c> record has a
/// <c>quantization</c> entry (<see cref="QuantizationInfo"/>); <see cref="Classifier.Load"/> runs it int8.
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
        return new QuantizeReport(output, model.Int8Targets.Count(), int8, floats, inBytes, new FileInfo(output).Length);
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
                var data = model.HostFloats(model.Parameters[name]);
                tensors[name] = new HostArray(shape, data);
                dtypes[name] = "F32";
                floats += data.Length;
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
