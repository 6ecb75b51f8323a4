using System.CommandLine;
using VitSharp.Checkpoints;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit quantize`: a checkpoint written as a quantised safetensors file (<see cref="Quantization"/>,
/// docs/QUANTIZATION.md): int8 weights per output channel (no calibration data: activations are quantised per token at
/// run time), or with <c>--dtype fp8</c> E4M3 weights and input scales per tensor, calibrated on the CPU on
/// <c>--calibration</c> images.</summary>
public sealed class QuantizeCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions(defaultModel: true);
        var output = new Option<string>("--output", "-o") { Description = "the quantised .safetensors file to write", Required = true };
        var dtype = new Option<string>("--dtype")
        {
            Description = "int8 (default: per output channel, for the CPU) or fp8 (E4M3 per tensor with calibrated input scales, for CUDA GPUs with FP8 tensor cores; needs --calibration)",
            DefaultValueFactory = _ => "int8",
        };
        var cmd = new Command("quantize", "write a checkpoint with int8 weights (per output channel, CPU) or FP8 E4M3 weights and calibrated input scales (--dtype fp8, CUDA)");
        ck.AddTo(cmd, device: false);
        cmd.Options.Add(output);
        cmd.Options.Add(dtype);
        ck.AddCalibration(cmd);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var scheme = (r.GetValue(dtype) ?? "int8").ToLowerInvariant() switch
            {
                "int8" or "i8" => QuantizationScheme.Int8,
                "fp8" or "e4m3" => QuantizationScheme.Fp8,
                var other => throw new VitSharpException($"--dtype must be int8 or fp8, not '{other}'"),
            };
            if (scheme == QuantizationScheme.Int8 && r.GetValue(ck.Calibration) is not null)
                throw new VitSharpException("--calibration is for --dtype fp8: int8 activations are quantised per token at run time, with no calibration");
            var q = scheme == QuantizationScheme.Fp8
                ? Quantization.QuantizeFileFp8(ck.CheckpointPath(r), r.GetValue(output)!, r.GetValue(ck.Calibration), ck.CalibrationImageCount(r), ck.Load(r))
                : Quantization.QuantizeFile(ck.CheckpointPath(r), r.GetValue(output)!, ck.Load(r));
            string kind = scheme == QuantizationScheme.Fp8 ? "fp8 (E4M3)" : "int8";
            string calibrated = scheme != QuantizationScheme.Fp8 ? "" : q.CalibrationImages > 0 ? $", input scales from {q.CalibrationImages} images" : ", the input file's input scales";
            Console.WriteLine($"{q.Output}: {q.Tensors} {kind} tensors ({q.QuantizedParameters:N0} {kind} + {q.FloatParameters:N0} f32 values{calibrated}), " +
                $"{q.OutputBytes / 1e6:F1} MB (input {q.InputBytes / 1e6:F1} MB)");
            return 0;
        }));
        return cmd;
    }
}
