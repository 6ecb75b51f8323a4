using VitSharp.Checkpoints;
using VitSharp.Models;

namespace VitSharp.Training;

/// <summary>
/// Starting weights for fine-tuning (the ViT paper's recipe): the pre-trained body, position embeddings resampled to the
/// new resolution (Checkpoint.Load with LoadOptions.ImageSize), and a new zero-initialised head for the new classes.
/// </summary>
public static class FineTune
{
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
