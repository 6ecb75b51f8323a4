using System.CommandLine;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Export;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit export`: a checkpoint as an ONNX model (opset 17, float32, dynamic batch), with its metadata record
/// (config, preprocessing, class names) in the model's metadata_props.</summary>
public sealed class ExportCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions();
        var output = new Option<string>("--output", "-o") { Description = "the .onnx file to write", Required = true };
        var labels = new Option<string?>("--labels") { Description = "class names to record: a text file or a JSON array (default: the checkpoint's)" };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing to record: timm, google, hf or a .json (default: what fits the checkpoint)" };
        var cmd = new Command("export", "export a checkpoint to ONNX");
        ck.AddTo(cmd, device: false);
        cmd.Options.Add(output);
        cmd.Options.Add(labels);
        cmd.Options.Add(recipe);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var ckpt = Checkpoint.Load(r.GetValue(ck.Checkpoint)!, ck.Load(r));
            var metadata = Recipes.Resolve(ckpt, ClassifyCommand.RecipeOption(r.GetValue(recipe)), r.GetValue(labels) is string l ? Labels.Read(l) : null);
            using var model = ckpt.CreateModel(CpuBackend.Instance);
            OnnxMetadata.Export(model, r.GetValue(output)!, metadata);
            Console.Error.WriteLine($"wrote {r.GetValue(output)} ({new FileInfo(r.GetValue(output)!).Length:N0} bytes)");
            return 0;
        }));
        return cmd;
    }
}
