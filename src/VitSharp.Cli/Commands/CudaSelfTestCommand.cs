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
        var fp8Only = new Option<bool>("--fp8-only") { Description = "only the FP8 checks (kernels, products, reference models in FP8)" };
        cmd.Options.Add(refs);
        cmd.Options.Add(fp8Only);
        cmd.Options.Add(train);
        cmd.Options.Add(trainOnly);
        cmd.SetAction(r =>
        {
            if (r.GetValue(fp8Only))
            {
                var results = CudaFp8SelfTest.Run(r.GetValue(refs));
                foreach (var x in results) Console.WriteLine(x);
                Console.WriteLine($"{results.Count(x => x.Pass)}/{results.Count} passed");
                return results.All(x => x.Pass) ? 0 : 1;
            }
            bool ok = r.GetValue(trainOnly) || CudaSelfTest.RunAll(r.GetValue(refs), Console.Out);
            if (r.GetValue(train) is { } dirs && (dirs.Length > 0 || r.GetValue(trainOnly)))
                ok &= CudaTrainingSelfTest.RunAll(dirs, Console.Out);
            return ok ? 0 : 1;
        });
        return cmd;
    }
}
