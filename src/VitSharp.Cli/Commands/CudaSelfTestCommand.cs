using System.CommandLine;
using VitSharp.Backends.Cuda.Testing;

namespace VitSharp.Cli.Commands;

/// <summary>`vit cuda-selftest`: the GPU op-parity and model-parity checks, for machines with a GPU but no .NET SDK.</summary>
public sealed class CudaSelfTestCommand : ICliCommand
{
    public Command Create()
    {
        var refs = new Option<string?>("--refs") { Description = "folder of reference models (meta.json, model.safetensors, input.npy, logits.npy)" };
        var cmd = new Command("cuda-selftest", "Check every CUDA op against the CPU backend, and reference logits on the GPU") { Hidden = true };
        var train = new Option<string[]>("--train") { Description = "also the training checks; each value a reference training folder (grads.safetensors, …)", AllowMultipleArgumentsPerToken = true };
        var trainOnly = new Option<bool>("--train-only") { Description = "skip the inference checks" };
        cmd.Options.Add(refs);
        cmd.Options.Add(train);
        cmd.Options.Add(trainOnly);
        cmd.SetAction(r =>
        {
            bool ok = r.GetValue(trainOnly) || CudaSelfTest.RunAll(r.GetValue(refs), Console.Out);
            if (r.GetValue(train) is { } dirs && (dirs.Length > 0 || r.GetValue(trainOnly)))
                ok &= CudaTrainingSelfTest.RunAll(dirs, Console.Out);
            return ok ? 0 : 1;
        });
        return cmd;
    }
}
