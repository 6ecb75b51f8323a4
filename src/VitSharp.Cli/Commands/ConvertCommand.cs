using System.CommandLine;
using VitSharp.Checkpoints;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit convert`: a checkpoint of any format VitSharp reads written as timm safetensors, VitSharp's own
/// safetensors, a Google npz or a Hugging Face folder (<see cref="CheckpointWriter"/>); without --format, a safetensors
/// file written to a .safetensors path is only re-typed (bf16 by default), names and metadata kept.</summary>
public sealed class ConvertCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions();
        var output = new Option<string>("--output", "-o") { Description = "file (.safetensors, .npz) or folder (hf) to write", Required = true };
        var format = new Option<string?>("--format", "-f")
        {
            Description = "timm, vitsharp, npz or hf (default: from --output: .npz → npz, a folder → hf, .safetensors → vitsharp, "
                + "or only a dtype rewrite when the input is safetensors too)",
        };
        var dtype = new Option<string?>("--dtype") { Description = "bf16, f16 or f32 (default: bf16 for a dtype rewrite, f32 for a format conversion)" };
        var metadata = new Option<bool>("--metadata") { Description = "--format timm: also write VitSharp's metadata record (config, preprocessing, labels)" };
        var labels = new Option<string?>("--labels") { Description = "class names to record: a text file or a JSON array (default: the checkpoint's)" };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing to record: timm, google, hf or a .json (default: what fits the checkpoint)" };
        var cmd = new Command("convert", "write a checkpoint as timm safetensors, VitSharp safetensors, a Google npz or a Hugging Face folder");
        ck.AddTo(cmd, device: false);
        foreach (var o in new Option[] { output, format, dtype, metadata, labels, recipe }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            string src = r.GetValue(ck.Checkpoint)!, dst = r.GetValue(output)!;
            var named = r.GetValue(format) is { } f ? CheckpointWriter.ParseFormat(f) : (CheckpointFormat?)null;
            ConversionResult result;
            // A plain dtype rewrite keeps the file's own record; --labels or --recipe write a new one (the path below).
            if (named is null && r.GetValue(labels) is null && r.GetValue(recipe) is null
                && dst.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && File.Exists(src) && SafeTensors.LooksLike(src))
                result = CheckpointWriter.RewriteDType(src, dst, CheckpointWriter.ParseDType(r.GetValue(dtype) ?? "bf16"));
            else
            {
                var target = named ?? CheckpointWriter.FormatOf(dst)
                    ?? throw new VitSharpException($"{dst}: cannot tell the format from the name; pass --format timm, vitsharp, npz or hf");
                if (r.GetValue(metadata) && target != CheckpointFormat.Timm)
                    throw new VitSharpException("--metadata is for --format timm (vitsharp always writes the record; npz and hf have no place for it)");
                var type = CheckpointWriter.ParseDType(r.GetValue(dtype) ?? "f32");
                var ckpt = Checkpoint.Load(src, ck.Load(r));
                ModelMetadata? md = r.GetValue(labels) is not null || r.GetValue(recipe) is not null
                    ? Recipes.Resolve(ckpt, ClassifyCommand.RecipeOption(r.GetValue(recipe)), r.GetValue(labels) is string l ? Labels.Read(l) : null)
                    : null;
                if (md?.Labels is not null) ckpt = ckpt with { Labels = md.Labels };
                result = CheckpointWriter.Write(ckpt, dst, target, type, md, r.GetValue(metadata));
            }
            Console.WriteLine($"{result.Path}: {CheckpointWriter.FormatName(result.Format)}{(result.Family is { } fam && fam != CheckpointWriter.FormatName(result.Format) ? $" ({fam})" : "")}, "
                + $"{result.Tensors} tensors, {result.Values} values as {result.DType}");
            foreach (var n in result.Notes) Console.WriteLine("note: " + n);
            return 0;
        }));
        return cmd;
    }
}
