using System.CommandLine;
using VitSharp.Checkpoints;
using VitSharp.Models;

namespace VitSharp.Cli.Commands;

/// <summary>`vit run`: NCHW float32 .npy in, logits (or final-norm tokens) .npy out.</summary>
public sealed class RunCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions();
        var input = new Option<string>("--input", "-i") { Description = "NCHW float32 .npy, already normalised", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "where to write the result (.npy)", Required = true };
        var features = new Option<bool>("--features") { Description = "write the tokens after the final norm (B,T,D) instead of logits" };
        var cmd = new Command("run", "run a checkpoint on an input array");
        ck.AddTo(cmd);
        cmd.Options.Add(input);
        cmd.Options.Add(output);
        cmd.Options.Add(features);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var ckpt = Checkpoint.Load(r.GetValue(ck.Checkpoint)!, ck.Load(r));
            var x = Npy.Read(r.GetValue(input)!);
            using var backend = ck.Backend(r);
            using var model = ckpt.CreateModel(backend);
            var y = model.Run(x, r.GetValue(features) ? OutputKind.Tokens : OutputKind.Logits);
            Npy.Write(r.GetValue(output)!, y.Data, y.Shape);
            Console.Error.WriteLine($"wrote {Tensors.Shape.Format(y.Shape)} to {r.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }
}
