using System.Text.Json;
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
    public const string StateKey = "vitsharp.train_state", RunConfigKey = "vitsharp.train_config", NormalizeKey = "vitsharp.normalize";

    /// <summary>Weights for inference (loadable by Checkpoint.Load, `vit run`, `vit eval`), with the labels and the
    /// normalisation the model was trained with.</summary>
    public static void ExportModel(string path, ModelConfig config, Dictionary<string, HostArray> weights, IReadOnlyList<string> classes,
        float[] mean, float[] std, string? recipe = null)
    {
        var meta = new Dictionary<string, string>
        {
            [Checkpoint.ConfigMetadataKey] = config.ToJson().ToJsonString(),
            [Checkpoint.LabelsMetadataKey] = new JsonArray(classes.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()).ToJsonString(),
            [NormalizeKey] = JsonSerializer.Serialize(new { mean, std, recipe }),
        };
        SafeTensors.Write(path, weights, meta);
    }

    /// <summary>The normalisation stored by <see cref="ExportModel"/>, or null.</summary>
    public static (float[] Mean, float[] Std, string? Recipe)? ReadNormalize(string path)
    {
        if (!SafeTensors.LooksLike(path)) return null;
        var (_, meta, _) = SafeTensors.ReadHeader(path);
        if (!meta.TryGetValue(NormalizeKey, out var json)) return null;
        var n = JsonNode.Parse(json)!;
        return (n["mean"]!.AsArray().Select(x => (float)x!).ToArray(), n["std"]!.AsArray().Select(x => (float)x!).ToArray(), (string?)n["recipe"]);
    }

    public static void Save(string path, ModelConfig config, TrainState state, string runConfig, Dictionary<string, HostArray> weights,
        Dictionary<string, HostArray> optimizer, Dictionary<string, HostArray>? ema, IReadOnlyList<string> classes)
    {
        var all = new Dictionary<string, HostArray>(weights);
        foreach (var (k, v) in optimizer) all["optim." + k] = v;
        if (ema is not null) foreach (var (k, v) in ema) all["ema." + k] = v;
        var meta = new Dictionary<string, string>
        {
            [Checkpoint.ConfigMetadataKey] = config.ToJson().ToJsonString(),
            [Checkpoint.LabelsMetadataKey] = new JsonArray(classes.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()).ToJsonString(),
            [StateKey] = JsonSerializer.Serialize(new { step = state.Step, epoch = state.Epoch, batch = state.Batch }),
            [RunConfigKey] = runConfig,
        };
        SafeTensors.Write(path, all, meta);
    }

    public sealed record Loaded(TrainState State, string ModelConfigJson, Dictionary<string, HostArray> Weights,
        Dictionary<string, HostArray> Optimizer, Dictionary<string, HostArray>? Ema);

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
        return new Loaded(state, meta.GetValueOrDefault(Checkpoint.ConfigMetadataKey, ""), weights, optim, ema.Count > 0 ? ema : null);
    }
}
