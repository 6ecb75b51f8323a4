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
    /// <summary>On CUDA, replay each step's forward, loss, backward and clipping as one recorded graph (same numbers as
    /// eager; needs accumulation_steps 1 and no dropout, else steps run eagerly). false: always eager.</summary>
    public bool CudaGraphs { get; init; } = true;
    public float EmaDecay { get; init; }
    public int Seed { get; init; }
    public int LogEverySteps { get; init; } = 10;
    /// <summary>Save a resumable checkpoint every this many steps (0: at the end of each epoch only).</summary>
    public int CheckpointEverySteps { get; init; }
    /// <summary>Evaluate on the validation split after every this many epochs (and always after the last).</summary>
    public int EvalEveryEpochs { get; init; } = 1;
    /// <summary>Save the end-of-epoch checkpoint after every this many epochs (and always after the last).</summary>
    public int CheckpointEveryEpochs { get; init; } = 1;
    public string Output { get; init; } = "runs/train";
    /// <summary>Data-parallel training (several GPUs or ranks): how gradients travel and where the optimizer state lives.
    /// Not part of what a checkpoint's run must match: a run resumes under other values and on any world size.</summary>
    public DistributedConfig Distributed { get; init; } = new();
    /// <summary>DeiT-style knowledge distillation from a teacher checkpoint (<c>"distillation"</c>, <c>vit train --teacher</c>);
    /// off while <see cref="DistillationConfig.Teacher"/> is null. See <see cref="Training.Distillation"/>.</summary>
    public DistillationConfig Distillation { get; init; } = new();
    /// <summary>Fine-tuning: start from this checkpoint, position embeddings resampled; its head is kept when it has the
    /// data's classes (<see cref="Training.FineTune.KeepsHead"/>), else a new zero-initialised head.</summary>
    public string? InitCheckpoint { get; init; }
    /// <summary>Fine-tuning: a new zero-initialised head even when the checkpoint's head has the data's classes.</summary>
    public bool NewHead { get; init; }

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
            // Which keys came from --set, so that their errors name the assignment rather than a line of the file.
            var sets = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var o in overrides ?? [])
            {
                Override(node, o);
                int eq = o.IndexOf('=');
                sets[o[..eq].Trim()] = o;
            }
            string Where(string key) => sets.TryGetValue(key, out var a) ? $"--set {a}" : source;
            CheckKeys(node, Defaults.Value, "", Where);
            TrainConfig config;
            try { config = Deserialize(node) ?? throw new VitSharpException($"{source}: empty config"); }
            catch (JsonException e) when (e.Path is { Length: > 2 } path && sets.ContainsKey(path[2..]))
            {
                var key = path[2..];
                throw new VitSharpException($"--set {sets[key]}: '{key}' must be {Expected(e.Message)}, not {At(node, key)?.ToJsonString() ?? "null"}", e);
            }
            catch (JsonException e) when (e.Path is { Length: > 2 } path)
            {
                throw new VitSharpException($"{source}: '{path[2..]}' must be {Expected(e.Message)} (line {e.LineNumber + 1})", e);
            }
            config.Validate(Where);
            try { config.Data.Validate(); }
            catch (VitSharpException e) when (e.Message.IndexOf(':') is > 0 and var colon && sets.ContainsKey(e.Message[..colon]))
            {
                throw new VitSharpException($"{Where(e.Message[..colon])}: {e.Message}", e);
            }
            catch (VitSharpException e) { throw new VitSharpException($"{source}: {e.Message}", e); }
            config.BuildModelConfigChecked(Where, sets.Where(kv => kv.Key.StartsWith("model.", StringComparison.Ordinal)).Select(kv => kv.Value).ToList());
            return config;
        }
        catch (JsonException e) { throw new VitSharpException($"{source}: {ErrorText.OneLine(e.Message)}", e); }
    }

    private static JsonNode? At(JsonObject root, string dotted)
    {
        JsonNode? n = root;
        foreach (var k in dotted.Split('.')) n = n is JsonObject o ? o[k] : null;
        return n;
    }

    private static readonly Lazy<JsonObject> Defaults = new(() => (JsonObject)JsonNode.Parse(new TrainConfig().ToJson())!);

    /// <summary>Keys a "model" object may hold (those <see cref="BuildModelConfig"/> reads, and those a checkpoint's
    /// vitsharp.config adds).</summary>
    public static readonly string[] ModelKeys =
    [
        "preset", "architecture", "img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_classes", "layer_norm_eps",
        "gelu", "global_pool", "num_heads", "mlp_dim", "qkv_bias", "class_token", "fc_norm", "token_mlp_dim", "channel_mlp_dim",
        "head_dim", "no_embed_class", "representation_size", "dist_token", "conv_tokenizer",
    ];

    /// <summary>Refuses keys the defaults do not have (or, under model, <see cref="ModelKeys"/> lacks), suggesting the nearest.</summary>
    private static void CheckKeys(JsonObject node, JsonObject defaults, string prefix, Func<string, string> where)
    {
        foreach (var (k, v) in node)
        {
            var key = prefix + k;
            string[] known = prefix == "model." ? ModelKeys : defaults.Select(kv => kv.Key).ToArray();
            if (!known.Contains(k))
            {
                var near = known.OrderBy(x => Distance(x, k)).First();
                var hint = Distance(near, k) <= Math.Max(2, k.Length / 3) ? $" (did you mean '{prefix}{near}'?)" : "";
                throw new VitSharpException($"{where(key)}: unknown key '{key}'{hint}");
            }
            if (prefix == "" && k == "model")
            {
                if (v is not JsonObject mo) throw new VitSharpException($"{where(key)}: 'model' must be an object");
                CheckKeys(mo, new JsonObject(), "model.", where);
            }
            else if (prefix == "model." && k == "conv_tokenizer" && v is JsonObject ct)
            {
                foreach (var (ck, _) in ct)
                    if (!ConvTokenizerConfig.Keys.Contains(ck))
                        throw new VitSharpException($"{where(key + "." + ck)}: unknown key '{key}.{ck}' (conv_tokenizer has {string.Join(", ", ConvTokenizerConfig.Keys)}; the kernel is fixed at 3)");
            }
            else if (prefix == "" && defaults[k] is JsonObject d && v is JsonObject o) CheckKeys(o, d, key + ".", where);
        }
    }

    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    private static string Expected(string message)
    {
        var m = System.Text.RegularExpressions.Regex.Match(message, @"converted to ([\w.`\[\]]+)");
        var t = m.Success ? m.Groups[1].Value : "";
        return t switch
        {
            _ when t.Contains("Single") || t.Contains("Double") => "a number",
            _ when t.Contains("Int32") || t.Contains("Int64") => "an integer",
            _ when t.Contains("Boolean") => "true or false",
            _ when t.Contains("String") => "a string",
            _ when t.Contains("[]") => "an array",
            _ when t.Contains("DecayKind") => $"one of {string.Join(", ", Enum.GetNames<DecayKind>().Select(n => n.ToLowerInvariant()))}",
            _ => "of another type",
        };
    }

    /// <summary>Checks the ranges of the run's numbers; the error names the key (and the --set that gave it).</summary>
    public void Validate(Func<string, string>? where = null)
    {
        where ??= _ => "config";
        void Check(bool ok, string key, object value, string rule)
        {
            if (!ok) throw new VitSharpException($"{where(key)}: '{key}' is {Convert.ToString(value, CultureInfo.InvariantCulture)}; {rule}");
        }
        static bool In(float v, float lo, float hi, bool hiOpen = true) => v >= lo && (hiOpen ? v < hi : v <= hi); // NaN fails
        Check(Optimizer.Lr > 0 && float.IsFinite(Optimizer.Lr), "optimizer.lr", Optimizer.Lr, "it must be > 0");
        Check(Optimizer.WeightDecay >= 0 && float.IsFinite(Optimizer.WeightDecay), "optimizer.weight_decay", Optimizer.WeightDecay, "it must be ≥ 0");
        Check(In(Optimizer.Beta1, 0, 1), "optimizer.beta1", Optimizer.Beta1, "it must be in [0, 1)");
        Check(In(Optimizer.Beta2, 0, 1), "optimizer.beta2", Optimizer.Beta2, "it must be in [0, 1)");
        Check(Optimizer.Eps > 0 && float.IsFinite(Optimizer.Eps), "optimizer.eps", Optimizer.Eps, "it must be > 0");
        Check(In(Optimizer.Momentum, 0, 1), "optimizer.momentum", Optimizer.Momentum, "it must be in [0, 1)");
        Check(Schedule.WarmupSteps >= 0, "schedule.warmup_steps", Schedule.WarmupSteps, "it must be ≥ 0");
        Check(Schedule.WarmupEpochs >= 0 && float.IsFinite(Schedule.WarmupEpochs), "schedule.warmup_epochs", Schedule.WarmupEpochs, "it must be ≥ 0");
        Check(Schedule.MinLr >= 0 && float.IsFinite(Schedule.MinLr), "schedule.min_lr", Schedule.MinLr, "it must be ≥ 0");
        Check(BatchSize >= 1, "batch_size", BatchSize, "it must be ≥ 1");
        Check(AccumulationSteps >= 1, "accumulation_steps", AccumulationSteps, "it must be ≥ 1");
        Check(Epochs >= 1, "epochs", Epochs, "it must be ≥ 1");
        Check(MaxSteps >= 0, "max_steps", MaxSteps, "it must be ≥ 0 (0: run all epochs)");
        Check(In(LabelSmoothing, 0, 1), "label_smoothing", LabelSmoothing, "it must be in [0, 1)");
        Check(Mixup >= 0 && float.IsFinite(Mixup), "mixup", Mixup, "it must be ≥ 0");
        Check(Cutmix >= 0 && float.IsFinite(Cutmix), "cutmix", Cutmix, "it must be ≥ 0");
        Check(In(MixupProb, 0, 1, hiOpen: false), "mixup_prob", MixupProb, "it must be in [0, 1]");
        Check(In(DropRate, 0, 1), "drop_rate", DropRate, "it must be in [0, 1)");
        Check(In(DropPathRate, 0, 1), "drop_path_rate", DropPathRate, "it must be in [0, 1)");
        Check(ClipGradNorm >= 0 && !float.IsNaN(ClipGradNorm), "clip_grad_norm", ClipGradNorm, "it must be ≥ 0 (0: off)");
        Check(In(EmaDecay, 0, 1), "ema_decay", EmaDecay, "it must be in [0, 1) (0: off)");
        Check(LogEverySteps >= 1, "log_every_steps", LogEverySteps, "it must be ≥ 1");
        Check(EvalEveryEpochs >= 1, "eval_every_epochs", EvalEveryEpochs, "it must be ≥ 1");
        Check(CheckpointEveryEpochs >= 1, "checkpoint_every_epochs", CheckpointEveryEpochs, "it must be ≥ 1");
        Check(CheckpointEverySteps >= 0, "checkpoint_every_steps", CheckpointEverySteps, "it must be ≥ 0");
        Check(Distributed.BucketMb > 0 && float.IsFinite(Distributed.BucketMb), "distributed.bucket_mb", Distributed.BucketMb, "it must be > 0");
        Check(!Distributed.Zero1 || Optimizer.Name.Equals("adamw", StringComparison.OrdinalIgnoreCase), "distributed.zero1", Distributed.Zero1,
            "optimizer state sharding (ZeRO-1) is implemented for adamw only");
        var kd = Distillation;
        Check(kd.Teacher is null || kd.Teacher.Trim().Length > 0, "distillation.teacher", kd.Teacher ?? "", "it must name a checkpoint (or be null: no distillation)");
        Check(kd.Type is "hard" or "soft", "distillation.type", kd.Type, "it must be hard or soft");
        Check(In(kd.Alpha, 0, 1, hiOpen: false), "distillation.alpha", kd.Alpha, "it must be in [0, 1]");
        Check(kd.Tau > 0 && float.IsFinite(kd.Tau), "distillation.tau", kd.Tau, "it must be > 0");
        Check(kd.TeacherHeads is null or > 0, "distillation.teacher_heads", kd.TeacherHeads ?? 0, "it must be ≥ 1 (or null: what the teacher's file states)");
        Check(Data.Workers >= 0, "data.workers", Data.Workers, "it must be ≥ 0 (0: every core)");
        Check(Data.ValFraction is >= 0 and < 1, "data.val_fraction", Data.ValFraction, "it must be in [0, 1)");
    }

    /// <summary>model.conv_tokenizer: null or absent (the patch projection), or {"layers", "channels"} (CCT's tokenizer).</summary>
    private static ConvTokenizerConfig? ConvTokenizerOf(JsonNode? n)
    {
        if (n is null) return null;
        if (n is not JsonObject o) throw new ModelKeyException("model.conv_tokenizer", $"'model.conv_tokenizer' must be an object like {{\"layers\": 2, \"channels\": 64}}, not {n.ToJsonString()}");
        int I(string k, int d)
        {
            var v = o[k];
            if (v is null) return d;
            if (v is JsonValue jv && jv.TryGetValue<int>(out var x)) return x;
            if (v is JsonValue dv && dv.TryGetValue<double>(out var dbl) && dbl == Math.Floor(dbl) && Math.Abs(dbl) <= int.MaxValue) return (int)dbl;
            throw new ModelKeyException("model.conv_tokenizer." + k, $"'model.conv_tokenizer.{k}' must be an integer, not {v.ToJsonString()}");
        }
        var d = new ConvTokenizerConfig();
        return new ConvTokenizerConfig { Layers = I("layers", d.Layers), Channels = I("channels", d.Channels) };
    }

    /// <summary>Builds the model configuration once to report a bad model key (by name, with its --set) before training.
    /// An error of the model as a whole (sizes that do not fit together) names the --set of model keys when any gave
    /// one, else the file.</summary>
    private void BuildModelConfigChecked(Func<string, string> where, IReadOnlyList<string> modelSets)
    {
        try { BuildModelConfig(); }
        catch (ModelKeyException e) { throw new VitSharpException($"{where(e.Key)}: {e.Message}", e); }
        catch (VitSharpException e)
        {
            var at = modelSets.Count > 0 ? string.Join(", ", modelSets.Select(a => $"--set {a}")) : where("model");
            throw new VitSharpException($"{at}: model: {e.Message}", e);
        }
    }

    private sealed class ModelKeyException(string key, string message) : VitSharpException(message)
    {
        public string Key { get; } = key;
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
        T Typed<T>(string k, string what)
        {
            var n = m[k];
            if (n is JsonValue v && v.TryGetValue<T>(out var x)) return x;
            if (typeof(T) == typeof(int) && n is JsonValue dv && dv.TryGetValue<double>(out var dbl) && dbl == Math.Floor(dbl) && Math.Abs(dbl) <= int.MaxValue)
                return (T)(object)(int)dbl;
            throw new ModelKeyException("model." + k, $"'model.{k}' must be {what}, not {n?.ToJsonString() ?? "null"}");
        }
        string? S(string k) => m[k] is null ? null : Typed<string>(k, "a string");
        ModelConfig c = S("preset") is { } p ? Presets.Get(p) : S("architecture") == "mixer" ? new MixerConfig() : new VitConfig();
        int I(string k, int d) => m[k] is null ? d : Typed<int>(k, "an integer");
        bool B(string k, bool d) => m[k] is null ? d : Typed<bool>(k, "true or false");
        c = c with
        {
            ImageSize = I("img_size", c.ImageSize), PatchSize = I("patch_size", c.PatchSize), InChannels = I("in_chans", c.InChannels),
            EmbedDim = I("embed_dim", c.EmbedDim), Depth = I("depth", c.Depth), NumClasses = numClasses ?? I("num_classes", c.NumClasses),
            LayerNormEps = m["layer_norm_eps"] is null ? c.LayerNormEps : (float)Typed<double>("layer_norm_eps", "a number"),
            Gelu = S("gelu") == "tanh" ? Activation.GeluTanh : c.Gelu,
        };
        if (c is VitConfig v)
        {
            Pooling pool;
            try { pool = VitConfig.ParsePool(S("global_pool")) ?? v.Pool; }
            catch (VitSharpException e) when (e is not ModelKeyException) { throw new ModelKeyException("model.global_pool", e.Message); }
            c = v with
            {
                NumHeads = I("num_heads", v.NumHeads), MlpDim = I("mlp_dim", m["embed_dim"] is null ? v.MlpDim : 4 * c.EmbedDim),
                QkvBias = B("qkv_bias", v.QkvBias),
                ClassToken = B("class_token", v.ClassToken),
                DistToken = B("dist_token", v.DistToken),
                Pool = pool, FcNorm = B("fc_norm", pool == Pooling.Avg),
                ConvTokenizer = ConvTokenizerOf(m["conv_tokenizer"]),
            };
        }
        else if (c is MixerConfig x)
            c = x with { TokenMlpDim = I("token_mlp_dim", c.EmbedDim / 2), ChannelMlpDim = I("channel_mlp_dim", 4 * c.EmbedDim) };
        c.Validate();
        return c;
    }
}

/// <summary>The training and evaluation data: data set, folders, resolution and augmentation.</summary>
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
    /// <summary>The square size the images are first resized to when the model takes another (0: none): the data's own
    /// resolution when a model is fine-tuned on it at a higher one (CIFAR-10 at 32 for a 64² model). Recorded in the
    /// model's preprocessing, so that a photo goes through the same two resizes as the training images.</summary>
    public int SourceSize { get; init; }
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
        if (SourceSize is < 0 or > Data.Transforms.PreprocessRecipe.MaxImageSize) throw new VitSharpException($"data.source_size: {SourceSize} must be in 0..{Data.Transforms.PreprocessRecipe.MaxImageSize}");
        if (SourceSize > 0 && Recipe is not null) throw new VitSharpException("data.source_size goes with the simple pipeline (mean/std), not with data.recipe");
    }
}

/// <summary>Data-parallel options (<c>"distributed"</c>); the world size comes from the launch (<c>vit train --gpus N</c>
/// or RANK/WORLD_SIZE), not from the configuration. <c>batch_size</c> stays the global batch: each of N ranks takes
/// batch_size/N of it.</summary>
public sealed record DistributedConfig
{
    /// <summary>Gradients are all-reduced in buckets of at most this many MiB of fp32 (PyTorch DDP's bucket_cap_mb, 25).</summary>
    public float BucketMb { get; init; } = 25f;
    /// <summary>Shard the AdamW moments over the ranks (ZeRO stage 1): each rank steps 1/N of the weights, then the
    /// shards are broadcast. Same weights as without it; optimizer state memory ÷ N.</summary>
    public bool Zero1 { get; init; }
}

/// <summary>DeiT-style knowledge distillation (<c>"distillation"</c>; facebookresearch/deit's <c>--teacher-path</c>,
/// <c>--distillation-type</c>, <c>--distillation-alpha</c>, <c>--distillation-tau</c>). The loss is
/// (1 − α)·CE(class head, targets) + α·(hard: CE(distillation head, argmax teacher) | soft: τ²·KL(softmax(teacher/τ) ‖
/// softmax(distillation head/τ)) / K), the distillation head being the class head when the student has no dist_token.</summary>
public sealed record DistillationConfig
{
    /// <summary>The teacher: any checkpoint Checkpoint.Load reads (file or folder), with the data's classes and the
    /// student's image size; null: no distillation.</summary>
    public string? Teacher { get; init; }
    /// <summary>hard (DeiT's best: the teacher's arg-max as a label) or soft (KL divergence at temperature tau).</summary>
    public string Type { get; init; } = "hard";
    /// <summary>The distillation term's weight; the class head's cross-entropy gets 1 − alpha. DeiT: 0.5.</summary>
    public float Alpha { get; init; } = 0.5f;
    /// <summary>The soft distillation's temperature (the hard one ignores it). DeiT: 1.0.</summary>
    public float Tau { get; init; } = 1f;
    /// <summary>The teacher's attention heads when its file cannot state them (timm names and heads ≠ width/64).</summary>
    public int? TeacherHeads { get; init; }

    /// <summary><see cref="Type"/> as the backend's enum.</summary>
    public Backends.DistillationKind ParseKind() => Type switch
    {
        "hard" => Backends.DistillationKind.Hard,
        "soft" => Backends.DistillationKind.Soft,
        _ => throw new VitSharpException($"distillation.type must be hard or soft, not '{Type}'"),
    };
}

/// <summary>The optimizer and its hyper-parameters.</summary>
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

/// <summary>The learning-rate schedule: warm-up and decay.</summary>
public sealed record ScheduleConfig
{
    public DecayKind Decay { get; init; } = DecayKind.Cosine;
    public long WarmupSteps { get; init; }
    public float WarmupEpochs { get; init; }
    public float MinLr { get; init; }
}
