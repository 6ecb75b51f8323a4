using System.CommandLine;
using VitSharp.Checkpoints;
using VitSharp.Data.Transforms;
using VitSharp.Models;

namespace VitSharp.Cli.Commands;

/// <summary>`vit init`: a randomly initialised checkpoint of a named preset (to train from, or to try the tools on).</summary>
public sealed class InitCommand : ICliCommand
{
    public Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "preset name, e.g. vit_tiny_patch16_224", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "safetensors file to write", Required = true };
        var seed = new Option<int>("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 };
        var classes = new Option<int?>("--classes") { Description = "number of classes (0: features only)" };
        var imgSize = new Option<int?>("--img-size") { Description = "image size" };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing to record: timm, google, hf or a recipe .json (default: timm)" };
        var cmd = new Command("init", "write a randomly initialised checkpoint of a preset");
        foreach (var o in new Option[] { model, output, seed, classes, imgSize, recipe }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var config = Presets.Get(r.GetValue(model)!);
            if (r.GetValue(classes) is int k) config = config with { NumClasses = k };
            if (r.GetValue(imgSize) is int s) config = config with { ImageSize = s };
            config.Validate();
            Checkpoint.Save(r.GetValue(output)!, config, Initializer.Init(config, r.GetValue(seed)),
                preprocess: ClassifyCommand.RecipeOption(r.GetValue(recipe)) ?? PreprocessRecipe.Timm(config.ImageSize));
            Console.Error.WriteLine($"wrote {r.GetValue(model)} ({config.ToJson().ToJsonString()}) to {r.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }
}
