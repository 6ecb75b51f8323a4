using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Models;

namespace VitSharp.Training;

/// <summary>Where a run stands: optimizer steps taken, and the next micro-batch (epoch, index) to read.</summary>
public sealed record TrainState(long Step, int Epoch, int Batch);

/// <summary>
/// The resumable checkpoint: ONE safetensors file (written atomically) with the weights under their canonical names, the
/// optimizer state under "optim.", the EMA weights under "ema.", and in its metadata the model config, the run config,
/// and the position (step, epoch, batch). Data order and augmentation are functions of (seed, epoch, position), so this
/// position is the whole RNG state. A plain weights file (model.safetensors) is exported beside it for eval and run.
/// </summary>
public static class TrainCheckpoint
{
    public const string StateKey = Checkpoint.TrainStateMetadataKey, RunConfigKey = "vitsharp.train_config";
    /// <summary>Where files written before <see cref="ModelMetadata"/> kept the normalisation (still read).</summary>
    public const string NormalizeKey = ModelMetadata.LegacyNormalizeKey;

    /// <summary>Weights for inference (loadable by Checkpoint.Load, `vit run`, `vit eval`), written atomically with their
    /// <see cref="ModelMetadata"/>: the config, the labels and the eval transform of what training used (a named recipe, or
    /// the simple pipeline with this mean/std).</summary>
    public static void ExportModel(string path, ModelConfig config, Dictionary<string, HostArray> weights, IReadOnlyList<string> classes,
        float[] mean, float[] std, string? recipe = null, int sourceSize = 0) =>
        Checkpoint.Save(path, Metadata(config, classes, mean, std, recipe, sourceSize), weights);

    /// <summary>The record a model trained with this data pipeline carries.</summary>
    public static ModelMetadata Metadata(ModelConfig config, IReadOnlyList<string> classes, float[] mean, float[] std, string? recipe, int sourceSize = 0) => new()
    {
        Config = config,
        Labels = [.. classes],
        Preprocess = ModelMetadata.TrainingPreprocess(config.ImageSize, mean, std, recipe, sourceSize: sourceSize),
    };

    /// <summary>The training checkpoint: weights, "optim." and "ema." tensors, and in the metadata the record (as the
    /// model file has it: config, labels, preprocessing from the run config's data section), the run config and the position.</summary>
    public static void Save(string path, ModelConfig config, TrainState state, string runConfig, Dictionary<string, HostArray> weights,
        Dictionary<string, HostArray> optimizer, Dictionary<string, HostArray>? ema, IReadOnlyList<string> classes)
    {
        var all = new Dictionary<string, HostArray>(weights);
        foreach (var (k, v) in optimizer) all["optim." + k] = v;
        if (ema is not null) foreach (var (k, v) in ema) all["ema." + k] = v;
        var d = TrainConfig.Parse(runConfig, source: path).Data;
        var meta = Metadata(config, classes, d.Mean, d.Std, d.Recipe, d.SourceSize).ToSafeTensorsMetadata();
        meta[StateKey] = new JsonObject { ["step"] = state.Step, ["epoch"] = state.Epoch, ["batch"] = state.Batch }.ToJsonString();
        meta[RunConfigKey] = runConfig;
        SafeTensors.Write(path, all, meta);
    }

    /// <summary>A training state read back from disk: counters, the model's config, weights, optimizer moments and EMA weights.</summary>
    public sealed record Loaded(TrainState State, string ModelConfigJson, Dictionary<string, HostArray> Weights,
        Dictionary<string, HostArray> Optimizer, Dictionary<string, HostArray>? Ema)
    {
        /// <summary>The run configuration the checkpoint was written under (TrainConfig JSON), when it records one.</summary>
        public string? RunConfigJson { get; init; }
    }

    public static Loaded Load(string path)
    {
        var all = SafeTensors.Read(path, out var meta);
        if (!meta.TryGetValue(StateKey, out var stateJson)) throw new CheckpointException(path, "not a VitSharp training checkpoint (no train state)");
        var s = JsonNode.Parse(stateJson)!;
        var state = new TrainState((long)s["step"]!, (int)s["epoch"]!, (int)s["batch"]!);
        var weights = new Dictionary<string, HostArray>();
        var optim = new Dictionary<string, HostArray>();
        var ema = new Dictionary<string, HostArray>();
        foreach (var (k, v) in all)
        {
            if (k.StartsWith("optim.", StringComparison.Ordinal)) optim[k[6..]] = v;
            else if (k.StartsWith("ema.", StringComparison.Ordinal)) ema[k[4..]] = v;
            else weights[k] = v;
        }
        var config = ModelMetadata.Read(meta, path)?.Config.ToJson().ToJsonString() ?? "";
        return new Loaded(state, config, weights, optim, ema.Count > 0 ? ema : null)
        {
            RunConfigJson = meta.TryGetValue(RunConfigKey, out var run) ? run : null,
        };
    }
}
