using System.CommandLine;
using VitSharp.Checkpoints;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Cli.Commands;

/// <summary>`vit run`: NCHW float32 .npy in, logits (or final-norm tokens) .npy out. For image inputs, row i of the
/// output is the i-th line of <c>Y.files.txt</c> written beside <c>Y.npy</c>.</summary>
public sealed class RunCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions();
        var input = new Option<string>("--input", "-i") { Description = "NCHW float32 .npy (already normalised), or an image file or folder", Required = true };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing for image inputs: timm, google, hf or a .json (default: what fits the checkpoint)" };
        var output = new Option<string>("--output", "-o") { Description = "where to write the result (.npy)", Required = true };
        var features = new Option<bool>("--features") { Description = "write the tokens after the final norm (B,T,D) instead of logits" };
        var cmd = new Command("run", "run a checkpoint on an input array");
        ck.AddTo(cmd);
        ck.AddDType(cmd);
        cmd.Options.Add(input);
        cmd.Options.Add(output);
        cmd.Options.Add(features);
        cmd.Options.Add(recipe);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var inputPath = r.GetValue(input)!;
            var kind = r.GetValue(features) ? OutputKind.Tokens : OutputKind.Logits;
            using var backend = ck.Backend(r);
            HostArray y;
            IReadOnlyList<string>? rows = null;
            int failed = 0, total = 0;
            if (inputPath.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            {
                // as Classifier.Load: a safetensors file is mapped and its weights packed (or quantised) from its pages
                var options = ck.Load(r);
                using var ckpt = Checkpoint.Load(r.GetValue(ck.Checkpoint)!, options.MapWeights is null ? options with { MapWeights = true } : options);
                using var model = VisionModel.Create(ckpt.Config, backend);
                InferenceDType.Validate(backend, ckpt, ck.DType(r));
                model.LoadForInference(ckpt.Weights, ckpt.Path, int8: ck.DType(r) == Tensors.DType.I8, stored: ckpt.Int8Weights);
                InferenceDType.Apply(model, ckpt, ck.DType(r), r.GetValue(ck.Calibration), ck.CalibrationImageCount(r));
                y = model.Run(Npy.Read(inputPath), kind);
            }
            else
            {
                // Images: decoded and preprocessed in file order, stacked into one batch.
                using var classifier = Classifier.Load(r.GetValue(ck.Checkpoint)!, ck.Load(r), backend, ClassifyCommand.RecipeOption(r.GetValue(recipe)), dtype: ck.DType(r),
                    calibration: r.GetValue(ck.Calibration), calibrationImages: ck.CalibrationImageCount(r));
                var files = Classifier.ExpandImagePaths([inputPath]);
                if (files.Count == 0) throw new VitSharpException($"{inputPath}: no image files");
                // A file that does not decode is reported on its own line; the others still run (their rows only,
                // listed in the sidecar), and the exit code says that some failed.
                var decoded = ImageFiles.Decode(files);
                foreach (var bad in decoded.Errors) Cli.ReportFileError(bad);
                failed = decoded.Errors.Count;
                if (decoded.Images.Count == 0) return Cli.BatchExitCode(failed, files.Count);
                y = classifier.Run(decoded.Images, kind);
                rows = decoded.Files;
                total = files.Count;
            }
            Npy.Write(r.GetValue(output)!, y.Data, y.Shape);
            Console.Error.WriteLine($"wrote {Tensors.Shape.Format(y.Shape)} to {r.GetValue(output)}");
            if (rows is not null)
            {
                var sidecar = FilesSidecar(r.GetValue(output)!);
                File.WriteAllLines(sidecar, rows);
                Console.Error.WriteLine($"wrote the file of each row to {sidecar}");
            }
            return Cli.BatchExitCode(failed, total);
        }));
        return cmd;
    }

    /// <summary>Y.npy → Y.files.txt: one input file a line, in output row order.</summary>
    public static string FilesSidecar(string output) => Path.ChangeExtension(output, ".files.txt");
}
