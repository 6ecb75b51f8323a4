using VitSharp.Checkpoints;
using VitSharp.Data.Datasets;
using VitSharp.Models;

namespace VitSharp.Training;

/// <summary>
/// Starting weights for fine-tuning (the ViT paper's recipe): the pre-trained body, position embeddings resampled to the
/// new resolution (Checkpoint.Load with LoadOptions.ImageSize), and a new zero-initialised head for the new classes.
/// </summary>
public static class FineTune
{
    /// <summary>The ViT paper's fine-tuning recipe as a training configuration: SGD momentum 0.9, lr 0.03, no weight
    /// decay, half an epoch of warmup then cosine decay, gradient norm clipped at 1.0, batch 64, 5 epochs, flips.</summary>
    public const string PaperRecipe = """
        {
          "optimizer": { "name": "sgd", "lr": 0.03, "momentum": 0.9, "weight_decay": 0 },
          "schedule": { "decay": "cosine", "warmup_epochs": 0.5 },
          "batch_size": 64, "epochs": 5, "label_smoothing": 0, "clip_grad_norm": 1.0,
          "data": { "val_split": "val", "horizontal_flip": true },
          "output": "runs/finetune"
        }
        """;

    /// <summary>`vit finetune`'s configuration: <paramref name="configFile"/> (else <see cref="PaperRecipe"/>) with
    /// <paramref name="overrides"/> (key=value, as --set), starting from <paramref name="checkpoint"/>, at
    /// <paramref name="imageSize"/> when given (position embeddings resampled).</summary>
    public static TrainConfig Configure(string checkpoint, string? configFile, IEnumerable<string> overrides, int? imageSize = null)
    {
        var all = overrides.ToList();
        all.Add($"init_checkpoint={System.Text.Json.Nodes.JsonValue.Create(checkpoint).ToJsonString()}");
        if (imageSize is int s) all.Add($"model.img_size={s}");
        return configFile is not null ? TrainConfig.Load(configFile, all) : TrainConfig.Parse(PaperRecipe, all, "fine-tuning defaults");
    }

    /// <summary>The training and validation data of a fine-tuning run; <paramref name="classes"/>, when given, must be
    /// the number of classes the data has (a one-line error otherwise).</summary>
    public static (IImageDataset Train, IImageDataset? Val) OpenData(TrainConfig config, int? classes = null)
    {
        var (train, val) = TrainData.Open(config.Data, config.Seed);
        if (classes is int k && k != train.Classes.Count)
            throw new VitSharpException($"--classes {k} but the data has {train.Classes.Count} classes ({string.Join(", ", train.Classes.Take(5))}…)");
        return (train, val);
    }

    public static (ModelConfig Config, Dictionary<string, HostArray> Weights) Prepare(string checkpoint, int? imageSize, int classes, int? heads = null)
    {
        var ck = Checkpoint.Load(checkpoint, new LoadOptions { ImageSize = imageSize, Heads = heads });
        var config = ck.Config with { NumClasses = classes };
        var weights = ck.Weights.Where(kv => !kv.Key.StartsWith("head.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        int features = config is VitConfig v ? v.FeatureDim : config.EmbedDim;
        weights["head.weight"] = new HostArray([classes, features], new float[classes * features]);
        weights["head.bias"] = new HostArray([classes], new float[classes]);
        return (config, weights);
    }
}
