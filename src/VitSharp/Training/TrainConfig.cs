using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using VitSharp.Backends;
using VitSharp.Data.Datasets;
using VitSharp.Models;

namespace VitSharp.Training;

/// <summary>
/// A training run as JSON (snake_case keys, see configs/*.json). Every field has a default, so a config lists only what
/// it changes; <see cref="Parse"/> applies CLI overrides of the form <c>optimizer.lr=0.01</c> before reading.
/// </summary>
public sealed record TrainConfig
{
    /// <summary>Model fields as in a checkpoint's vitsharp.config (architecture, img_size, patch_size, embed_dim, depth,
    /// num_heads, mlp_dim, num_classes, global_pool, ...), or "preset" naming one of Presets plus overrides.</summary>
    public JsonObject Model { get; init; } = new();
    public DataConfig Data { get; init; } = new();
    public OptimizerConfig Optimizer { get; init; } = new();
    public ScheduleConfig Schedule { get; init; } = new();
    public int BatchSize { get; init; } = 128;
    public int AccumulationSteps { get; init; } = 1;
    public int Epochs { get; init; } = 10;
    /// <summary>Stop after this many optimizer steps (0: run all epochs).</summary>
    public long MaxSteps { get; init; }
    public float LabelSmoothing { get; init; } = 0.1f;
    public float Mixup { get; init; }
    public float Cutmix { get; init; }
    public float MixupProb { get; init; } = 1f;
    public float DropRate { get; init; }
    public float DropPathRate { get; init; }
    public float ClipGradNorm { get; init; } = 1f;
    public float EmaDecay { get; init; }
    public int Seed { get; init; }
    public int LogEverySteps { get; init; } = 10;
    /// <summary>Save a resumable checkpoint every this many steps (0: at the end of each epoch only).</summary>
    public int CheckpointEverySteps { get; init; }
    public string Output { get; init; } = "runs/train";
    /// <summary>Fine-tuning: start from this checkpoint (a new zero-initialised head, position embeddings resampled).</summary>
    public string? InitCheckpoint { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    // Reflection-based (de)serialisation of TrainConfig's own records: the CLI publishes trimmed with VitSharp as a trimmer
    // root assembly (every member kept) and reflection-based System.Text.Json enabled (VitSharp.Cli.csproj).
    private const string Kept = "VitSharp is a trimmer root assembly of the published CLI: TrainConfig's members are kept";

    public static TrainConfig Load(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path)) throw new VitSharpException($"{path}: config file not found");
        return Parse(File.ReadAllText(path), overrides, path);
    }

    public static TrainConfig Parse(string json, IEnumerable<string>? overrides = null, string source = "config")
    {
        try
        {
            var node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })
                as JsonObject ?? throw new VitSharpException($"{source}: a JSON object expected");
            foreach (var o in overrides ?? []) Override(node, o);
            var config = Deserialize(node) ?? throw new VitSharpException($"{source}: empty config");
            config.Data.Validate();
            return config;
        }
        catch (JsonException e) { throw new VitSharpException($"{source}: {e.Message}", e); }
    }

    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = Kept)]
    private static TrainConfig? Deserialize(JsonObject node) => node.Deserialize<TrainConfig>(Json);

    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = Kept)]
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Sets a dotted key (<c>optimizer.lr=0.01</c>); the value is read as JSON, else taken as a string.</summary>
    public static void Override(JsonObject root, string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new VitSharpException($"override '{assignment}' is not key=value");
        var keys = assignment[..eq].Trim().Split('.');
        var text = assignment[(eq + 1)..].Trim();
        JsonNode? value;
        try { value = JsonNode.Parse(text); } catch (JsonException) { value = JsonValue.Create(text); }
        var obj = root;
        foreach (var k in keys[..^1])
        {
            if (obj[k] is not JsonObject child) obj[k] = child = new JsonObject();
            obj = child;
        }
        obj[keys[^1]] = value;
    }

    /// <summary>The model configuration this run trains.</summary>
    public ModelConfig BuildModelConfig(int? numClasses = null)
    {
        var m = Model;
        ModelConfig c = m["preset"] is JsonValue p ? Presets.Get((string)p!) : (string?)m["architecture"] == "mixer" ? new MixerConfig() : new VitConfig();
        int I(string k, int d) => m[k] is JsonNode n ? (int)n : d;
        c = c with
        {
            ImageSize = I("img_size", c.ImageSize), PatchSize = I("patch_size", c.PatchSize), InChannels = I("in_chans", c.InChannels),
            EmbedDim = I("embed_dim", c.EmbedDim), Depth = I("depth", c.Depth), NumClasses = numClasses ?? I("num_classes", c.NumClasses),
            LayerNormEps = m["layer_norm_eps"] is JsonNode e ? (float)(double)e : c.LayerNormEps,
            Gelu = (string?)m["gelu"] == "tanh" ? Activation.GeluTanh : c.Gelu,
        };
        if (c is VitConfig v)
        {
            var pool = (string?)m["global_pool"] == "avg" ? Pooling.Avg : (string?)m["global_pool"] == "token" ? Pooling.Token : v.Pool;
            c = v with
            {
                NumHeads = I("num_heads", v.NumHeads), MlpDim = I("mlp_dim", m["embed_dim"] is null ? v.MlpDim : 4 * c.EmbedDim),
                QkvBias = m["qkv_bias"] is JsonNode qb ? (bool)qb : v.QkvBias,
                ClassToken = m["class_token"] is JsonNode ct ? (bool)ct : v.ClassToken,
                Pool = pool, FcNorm = m["fc_norm"] is JsonNode fn ? (bool)fn : pool == Pooling.Avg,
            };
        }
        else if (c is MixerConfig x)
            c = x with { TokenMlpDim = I("token_mlp_dim", c.EmbedDim / 2), ChannelMlpDim = I("channel_mlp_dim", 4 * c.EmbedDim) };
        c.Validate();
        return c;
    }
}

public sealed record DataConfig
{
    /// <summary>A folder (<c>[split/]class/*.jpg</c>), a .tar/.tar.gz archive, or a folder of MNIST-style idx files.</summary>
    public string Path { get; init; } = "";
    public string TrainSplit { get; init; } = "train";
    /// <summary>Validation split name inside the data ("test", "val"); empty: hold out <see cref="ValFraction"/> of train.</summary>
    public string ValSplit { get; init; } = "test";
    public double ValFraction { get; init; }
    /// <summary>Use at most this many images per class (0: all) — small, balanced slices for quick runs and tests.</summary>
    public int TrainPerClass { get; init; }
    public int ValPerClass { get; init; }
    public float[] Mean { get; init; } = [0.5f, 0.5f, 0.5f];
    public float[] Std { get; init; } = [0.5f, 0.5f, 0.5f];
    public int CropPadding { get; init; }
    /// <summary>A named preprocessing recipe (timm, google, hf) for training and evaluation instead of mean/std,
    /// crop_padding and horizontal_flip: random resized crop and flip, as those libraries fine-tune.</summary>
    public string? Recipe { get; init; }
    public bool HorizontalFlip { get; init; }
    /// <summary>Threads that decode and augment (0: every core, Environment.ProcessorCount).</summary>
    public int Workers { get; init; }
    /// <summary>Finished batches the loader keeps ready ahead of the model.</summary>
    public int Prefetch { get; init; } = 3;
    /// <summary>auto (decode once into memory when the decoded images fit CachedDataset.DefaultBoundBytes: a quarter of
    /// memory, at most 4 GiB), memory (always), none (decode every epoch).</summary>
    public string Cache { get; init; } = "auto";
    /// <summary>timm's RandAugment string ("rand-m9-mstd0.5-inc1"), "trivial" (torchvision's TrivialAugmentWide), or null.</summary>
    public string? AutoAugment { get; init; }
    /// <summary>timm's random erasing probability (0: off), after normalisation.</summary>
    public float RandomErasing { get; init; }
    /// <summary>What erased boxes hold: pixel (per-pixel normal noise, timm's default), rand (per channel) or const (0).</summary>
    public string RandomErasingMode { get; init; } = "pixel";

    /// <summary>Checks the string-valued and ranged keys; the error names the key.</summary>
    public void Validate()
    {
        static T Key<T>(string key, Func<T> parse)
        {
            try { return parse(); }
            catch (VitSharpException e) { throw new VitSharpException($"data.{key}: {e.Message}", e); }
        }
        Key("cache", () => CachedDataset.ParseMode(Cache));
        Key("auto_augment", () => Data.Datasets.AutoAugment.Parse(AutoAugment));
        Key("random_erasing_mode", () => Data.Datasets.RandomErasing.ParseMode(RandomErasingMode));
        if (RandomErasing is < 0 or > 1 || float.IsNaN(RandomErasing)) throw new VitSharpException($"data.random_erasing: {RandomErasing} is not a probability in [0, 1]");
        if (Workers < 0) throw new VitSharpException($"data.workers: {Workers} (0 means every core)");
        if (Prefetch < 1) throw new VitSharpException($"data.prefetch: {Prefetch} must be at least 1");
        if (CropPadding < 0) throw new VitSharpException($"data.crop_padding: {CropPadding} must not be negative");
    }
}

public sealed record OptimizerConfig
{
    /// <summary>adamw or sgd.</summary>
    public string Name { get; init; } = "adamw";
    public float Lr { get; init; } = 1e-3f;
    public float WeightDecay { get; init; } = 0.05f;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float Eps { get; init; } = 1e-8f;
    public float Momentum { get; init; } = 0.9f;
    public bool Nesterov { get; init; }
    /// <summary>timm's rule: no weight decay on biases, norms, pos_embed and cls_token.</summary>
    public bool ExcludeFromDecay { get; init; } = true;
}

public sealed record ScheduleConfig
{
    public DecayKind Decay { get; init; } = DecayKind.Cosine;
    public long WarmupSteps { get; init; }
    public float WarmupEpochs { get; init; }
    public float MinLr { get; init; }
}
