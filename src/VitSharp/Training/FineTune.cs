using VitSharp.Checkpoints;
using VitSharp.Data.Datasets;
using VitSharp.Models;

namespace VitSharp.Training;

/// <summary>
/// Starting weights for fine-tuning (the ViT paper's recipe): the pre-trained body, position embeddings resampled to the
/// new resolution (Checkpoint.Load with LoadOptions.ImageSize), and the pre-trained head where it has the data's classes,
/// else a new zero-initialised head for the new classes.
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

    /// <summary>The model and starting weights of a fine-tuning run. The checkpoint's head is kept when it classifies the
    /// same classes as the data — same count and, where the checkpoint names its classes, the same names in the same
    /// order (fine-tuning at a higher resolution on the pre-training data, as timm does when num_classes is unchanged);
    /// otherwise, or when <paramref name="newHead"/> is set, the head starts at zero for the new classes.</summary>
    public static (ModelConfig Config, Dictionary<string, HostArray> Weights) Prepare(string checkpoint, int? imageSize, int classes, int? heads = null,
        IReadOnlyList<string>? classNames = null, bool newHead = false)
    {
        var ck = Checkpoint.Load(checkpoint, new LoadOptions { ImageSize = imageSize, Heads = heads });
        var config = ck.Config with { NumClasses = classes };
        int features = config is VitConfig v ? v.FeatureDim : config.EmbedDim;
        if (!newHead && KeepsHead(ck, classes, classNames, features)) return (config, new Dictionary<string, HostArray>(ck.Weights));
        var weights = ck.Weights.Where(kv => !kv.Key.StartsWith("head.", StringComparison.Ordinal) && !kv.Key.StartsWith("head_dist.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        weights["head.weight"] = new HostArray([classes, features], new float[classes * features]);
        weights["head.bias"] = new HostArray([classes], new float[classes]);
        if (config is VitConfig { DistToken: true } dv)
        {
            // A DeiT checkpoint's distillation head is new for the new classes too.
            weights["head_dist.weight"] = new HostArray([classes, dv.EmbedDim], new float[classes * dv.EmbedDim]);
            weights["head_dist.bias"] = new HostArray([classes], new float[classes]);
        }
        return (config, weights);
    }

    /// <summary>Whether the checkpoint's head already maps onto the data's classes.</summary>
    public static bool KeepsHead(Checkpoint ck, int classes, IReadOnlyList<string>? classNames, int features)
    {
        if (ck.Config.NumClasses != classes) return false;
        if (!ck.Weights.TryGetValue("head.weight", out var w) || !w.Shape.SequenceEqual([classes, features])) return false;
        if (!ck.Weights.TryGetValue("head.bias", out var b) || !b.Shape.SequenceEqual([classes])) return false;
        if (ck.Labels is { } labels && classNames is not null && !labels.SequenceEqual(classNames, StringComparer.Ordinal)) return false;
        return true;
    }
}
