using System.CommandLine;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit quantize`: a checkpoint written as a quantised safetensors file (int8 weights per output channel,
/// <see cref="Quantization"/>, docs/QUANTIZATION.md). No calibration data: activations are quantised per token at run time.</summary>
public sealed class QuantizeCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions(defaultModel: true);
        var output = new Option<string>("--output", "-o") { Description = "the quantised .safetensors file to write", Required = true };
        var cmd = new Command("quantize", "write a checkpoint with int8 weights (per output channel) for int8 inference on the CPU");
        ck.AddTo(cmd, device: false);
        cmd.Options.Add(output);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var q = Quantization.QuantizeFile(ck.CheckpointPath(r), r.GetValue(output)!, ck.Load(r));
            Console.WriteLine($"{q.Output}: {q.Tensors} int8 tensors ({q.Int8Parameters:N0} int8 + {q.FloatParameters:N0} f32 values), " +
                $"{q.OutputBytes / 1e6:F1} MB (input {q.InputBytes / 1e6:F1} MB)");
            return 0;
        }));
        return cmd;
    }
}
