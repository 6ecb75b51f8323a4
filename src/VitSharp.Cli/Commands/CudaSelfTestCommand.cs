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
        cmd.Options.Add(refs);
        cmd.SetAction(r => CudaSelfTest.RunAll(r.GetValue(refs), Console.Out) ? 0 : 1);
        return cmd;
    }
}
