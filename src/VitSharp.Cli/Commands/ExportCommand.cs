using System.CommandLine;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Export;

namespace VitSharp.Cli.Commands;

/// <summary>`vit export`: a checkpoint as an ONNX model (opset 17, float32, dynamic batch).</summary>
public sealed class ExportCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions();
        var output = new Option<string>("--output", "-o") { Description = "the .onnx file to write", Required = true };
        var cmd = new Command("export", "export a checkpoint to ONNX");
        ck.AddTo(cmd, device: false);
        cmd.Options.Add(output);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var ckpt = Checkpoint.Load(r.GetValue(ck.Checkpoint)!, ck.Load(r));
            using var model = ckpt.CreateModel(CpuBackend.Instance);
            OnnxExporter.Export(model, r.GetValue(output)!);
            Console.Error.WriteLine($"wrote {r.GetValue(output)} ({new FileInfo(r.GetValue(output)!).Length:N0} bytes)");
            return 0;
        }));
        return cmd;
    }
}
