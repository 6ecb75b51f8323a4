using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Data.Transforms;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Checkpoints;

/// <summary>
/// What a VitSharp model file says about itself, in ONE record under the safetensors metadata key
/// <see cref="MetadataKey"/> (and in an exported ONNX model's metadata_props): the model configuration, the preprocessing
/// recipe fully stated (resize mode, size, interpolation, antialias, crop_pct, mean, std), the class names, and a format
/// version. Every command that writes a checkpoint writes it; <see cref="Checkpoint.Load"/> reads it (and, for files
/// written before it existed, the older keys vitsharp.config, vitsharp.labels and vitsharp.normalize).
/// Unknown keys are errors (a <see cref="CheckpointException"/> naming the file and the key).
/// <code>
/// { "format_version": 1,
///   "config": { "architecture": "vit", "img_size": 32, "patch_size": 8, … },
///   "preprocess": { "name": "simple", "resize": "square", "image_size": 32, "interpolation": "bicubic", "antialias": true,
///                   "crop_pct": 1, "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616] },
///   "labels": ["airplane", …] }
/// </code>
/// </summary>
public sealed record ModelMetadata
{
    public const string MetadataKey = "vitsharp.model";
    public const int CurrentVersion = 1;
    // The keys written before this record (still read).
    public const string LegacyConfigKey = "vitsharp.config", LegacyLabelsKey = "vitsharp.labels", LegacyNormalizeKey = "vitsharp.normalize";

    /// <summary>The version read (0: the older keys); a record is always written as <see cref="CurrentVersion"/>.</summary>
    public int FormatVersion { get; init; } = CurrentVersion;
    public required ModelConfig Config { get; init; }
    /// <summary>The eval transform the model expects. Null only for files written before this record that did not say
    /// (the format's convention applies then).</summary>
    public PreprocessRecipe? Preprocess { get; init; }
    public string[]? Labels { get; init; }
    /// <summary>Present in a quantised file: which tensors are stored as int8 (each with a NAME_scale tensor).</summary>
    public QuantizationInfo? Quantization { get; init; }

    public JsonObject ToJsonObject()
    {
        var o = new JsonObject { ["format_version"] = CurrentVersion, ["config"] = Config.ToJson() };
        if (Preprocess is { } p) o["preprocess"] = PreprocessJson(p);
        if (Labels is not null) o["labels"] = new JsonArray(Labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray());
        if (Quantization is { } q) o["quantization"] = q.ToJson();
        return o;
    }

    public string ToJson() => ToJsonObject().ToJsonString();

    /// <summary>The safetensors metadata that carries this record.</summary>
    public Dictionary<string, string> ToSafeTensorsMetadata() => new() { [MetadataKey] = ToJson() };

    /// <summary>The record in a safetensors metadata map: <see cref="MetadataKey"/>, else the older keys; null if none.</summary>
    public static ModelMetadata? Read(IReadOnlyDictionary<string, string> meta, string file)
    {
        if (meta.TryGetValue(MetadataKey, out var json)) return Parse(json, file);
        if (!meta.TryGetValue(LegacyConfigKey, out var cfg)) return null;
        try
        {
            var config = ParseConfig(Object(ParseNode(cfg, file, LegacyConfigKey), file, LegacyConfigKey), file, LegacyConfigKey + ".", strict: false);
            string[]? labels = meta.TryGetValue(LegacyLabelsKey, out var l) ? Strings(ParseNode(l, file, LegacyLabelsKey), file, LegacyLabelsKey) : null;
            PreprocessRecipe? pre = null;
            if (meta.TryGetValue(LegacyNormalizeKey, out var n))
            {
                var node = Object(ParseNode(n, file, LegacyNormalizeKey), file, LegacyNormalizeKey);
                pre = TrainingPreprocess(config.ImageSize, Floats(node["mean"], file, LegacyNormalizeKey + ".mean"),
                    Floats(node["std"], file, LegacyNormalizeKey + ".std"), node["recipe"] is JsonNode r ? Str(r, file, LegacyNormalizeKey + ".recipe") : null, file);
            }
            return new ModelMetadata { FormatVersion = 0, Config = config, Labels = labels, Preprocess = pre };
        }
        catch (CheckpointException e) when (e.Detail.StartsWith(ErrorPrefix, StringComparison.Ordinal))
        {
            throw new CheckpointException(file, "metadata: " + e.Detail[ErrorPrefix.Length..], inner: e); // the keys are named in full
        }
    }

    /// <summary>Parses the record's JSON; <paramref name="file"/> names the file in errors.</summary>
    public static ModelMetadata Parse(string json, string file)
    {
        var o = Object(ParseNode(json, file, MetadataKey), file, MetadataKey);
        Known(o, file, "", "format_version", "config", "preprocess", "labels", "quantization");
        int version = o["format_version"] is JsonNode v ? Int(v, file, "format_version")
            : throw Error(file, "missing key 'format_version'");
        if (version < 1 || version > CurrentVersion)
            throw Error(file, $"format_version {version} is not one this VitSharp reads (1 to {CurrentVersion}); a newer VitSharp wrote it?");
        var config = ParseConfig(o["config"] is JsonObject c ? c : throw Error(file, "missing or non-object key 'config'"), file, "config.", strict: true);
        var pre = o["preprocess"] is JsonObject p ? ParsePreprocess(p, file, config.ImageSize)
            : throw Error(file, "missing or non-object key 'preprocess'");
        var labels = o["labels"] is JsonNode l ? Strings(l, file, "labels") : null;
        if (labels is not null && config.NumClasses > 0 && labels.Length != config.NumClasses)
            throw Error(file, $"{labels.Length} labels for a model with {config.NumClasses} classes");
        var quant = o["quantization"] is JsonNode qn ? ParseQuantization(qn, file) : null;
        return new ModelMetadata { FormatVersion = version, Config = config, Preprocess = pre, Labels = labels, Quantization = quant };
    }

    private static QuantizationInfo ParseQuantization(JsonNode n, string file)
    {
        const string at = "quantization.";
        var o = n as JsonObject ?? throw Error(file, "key 'quantization' must be an object");
        Known(o, file, at, "weights", "activations", "tensors");
        JsonNode Need(string k) => o[k] ?? throw Error(file, $"missing key '{at}{k}'");
        var weights = Str(Need("weights"), file, at + "weights");
        var scheme = weights switch
        {
            QuantizationInfo.WeightScheme => QuantizationScheme.Int8,
            QuantizationInfo.Fp8WeightScheme => QuantizationScheme.Fp8,
            _ => throw Error(file, $"key '{at}weights': '{weights}' is not '{QuantizationInfo.WeightScheme}' or '{QuantizationInfo.Fp8WeightScheme}', the schemes this VitSharp reads"),
        };
        var acts = Str(Need("activations"), file, at + "activations");
        var expected = scheme == QuantizationScheme.Int8 ? QuantizationInfo.ActivationScheme : QuantizationInfo.Fp8ActivationScheme;
        if (acts != expected)
            throw Error(file, $"key '{at}activations': '{acts}' is not '{expected}', the one scheme this VitSharp runs with '{weights}' weights");
        var tensors = Strings(Need("tensors"), file, at + "tensors");
        if (tensors.Length == 0) throw Error(file, $"key '{at}tensors' is empty");
        if (tensors.Distinct(StringComparer.Ordinal).Count() != tensors.Length) throw Error(file, $"key '{at}tensors' names a tensor twice");
        if (scheme == QuantizationScheme.Fp8 && tensors.FirstOrDefault(t => !t.EndsWith(".weight", StringComparison.Ordinal)) is { } odd)
            throw Error(file, $"key '{at}tensors': '{odd}' is not a Linear weight (NAME.weight), whose input scale would be NAME.input_scale");
        return new QuantizationInfo { Scheme = scheme, Tensors = tensors };
    }

    /// <summary>The eval transform of what training used: a named recipe's, or the simple small-image pipeline (Pillow
    /// bicubic to the model's size when an image differs from it, then the given mean/std).</summary>
    public static PreprocessRecipe TrainingPreprocess(int imageSize, float[] mean, float[] std, string? recipe, string file = "training data", int sourceSize = 0)
    {
        if (recipe is not null)
        {
            try { return PreprocessRecipe.Named(recipe, imageSize); }
            catch (ArgumentException e) { throw new CheckpointException(file, e.Message, inner: e); }
        }
        return new PreprocessRecipe
        {
            Name = "simple", ImageSize = imageSize, SourceSize = sourceSize == imageSize ? 0 : sourceSize, Resize = ResizeMode.Square,
            Interpolation = Interpolation.Bicubic, Antialias = true, CropPct = 1.0, Mean = PerChannel(mean), Std = PerChannel(std),
        };
    }

    private static JsonObject PreprocessJson(PreprocessRecipe p)
    {
        var o = new JsonObject
        {
            ["name"] = p.Name,
            ["resize"] = p.Resize == ResizeMode.Square ? "square" : "shorter_side_then_center_crop",
            ["image_size"] = p.ImageSize,
            ["interpolation"] = p.Interpolation == Interpolation.Bilinear ? "bilinear" : "bicubic",
            ["antialias"] = p.Antialias,
            ["crop_pct"] = p.CropPct,
            ["mean"] = new JsonArray(p.Mean.Select(x => (JsonNode?)x).ToArray()),
            ["std"] = new JsonArray(p.Std.Select(x => (JsonNode?)x).ToArray()),
        };
        // Written only when set, so that the records of models without it stay as they were.
        if (p.SourceSize > 0) o["source_size"] = p.SourceSize;
        return o;
    }

    private static PreprocessRecipe ParsePreprocess(JsonObject o, string file, int defaultSize)
    {
        const string at = "preprocess.";
        Known(o, file, at, "name", "resize", "image_size", "source_size", "interpolation", "antialias", "crop_pct", "mean", "std");
        JsonNode Need(string k) => o[k] ?? throw Error(file, $"missing key '{at}{k}'");
        var resize = Str(Need("resize"), file, at + "resize") switch
        {
            "square" => ResizeMode.Square,
            "shorter_side_then_center_crop" => ResizeMode.ShorterSideThenCenterCrop,
            var other => throw Error(file, $"key '{at}resize': '{other}' is neither 'square' nor 'shorter_side_then_center_crop'"),
        };
        var interpolation = Str(Need("interpolation"), file, at + "interpolation") switch
        {
            "bilinear" => Interpolation.Bilinear,
            "bicubic" => Interpolation.Bicubic,
            var other => throw Error(file, $"key '{at}interpolation': '{other}' is neither 'bilinear' nor 'bicubic'"),
        };
        var name = o["name"] is JsonNode n ? Str(n, file, at + "name") : "custom";
        // A named recipe keeps its training fields (random resized crop scale, flip), which the record does not state.
        var r = (name is "timm" or "google" or "hf" ? PreprocessRecipe.Named(name) : new PreprocessRecipe()) with
        {
            Name = name,
            Resize = resize,
            ImageSize = o["image_size"] is JsonNode size ? Int(size, file, at + "image_size") : defaultSize,
            SourceSize = o["source_size"] is JsonNode src ? Int(src, file, at + "source_size") : 0,
            Interpolation = interpolation,
            Antialias = o["antialias"] is JsonNode a ? Bool(a, file, at + "antialias") : true,
            CropPct = o["crop_pct"] is JsonNode c ? Num(c, file, at + "crop_pct")
                : resize == ResizeMode.Square ? 1.0 : throw Error(file, $"missing key '{at}crop_pct'"),
            Mean = PerChannel(Floats(Need("mean"), file, at + "mean")),
            Std = PerChannel(Floats(Need("std"), file, at + "std")),
        };
        if (r.ImageSize is <= 0 or > PreprocessRecipe.MaxImageSize) throw Error(file, $"key '{at}image_size': {r.ImageSize} is not in 1..{PreprocessRecipe.MaxImageSize}");
        if (r.SourceSize is <= 0 or > PreprocessRecipe.MaxImageSize && o["source_size"] is not null) throw Error(file, $"key '{at}source_size': {r.SourceSize} is not in 1..{PreprocessRecipe.MaxImageSize}");
        if (r.SourceSize > 0 && r.Resize != ResizeMode.Square) throw Error(file, $"key '{at}source_size' goes with a square resize");
        if (!r.Antialias && (r.Resize == ResizeMode.ShorterSideThenCenterCrop || r.Interpolation != Interpolation.Bilinear))
            throw Error(file, $"key '{at}antialias': false is implemented only for a square bilinear resize");
        if (r.Resize == ResizeMode.ShorterSideThenCenterCrop && r.CropPct is <= 0 or > 1) throw Error(file, $"key '{at}crop_pct': {r.CropPct} is not in (0, 1]");
        if (r.Mean.Length == 0 || r.Mean.Length != r.Std.Length) throw Error(file, $"keys '{at}mean' and '{at}std' need as many values, one per channel");
        if (r.Std.Any(x => x == 0)) throw Error(file, $"key '{at}std': a zero std");
        return r;
    }

    // Keys a config may have: what ModelConfig.ToJson writes for each architecture (so a field added there is known here).
    private static readonly string[] VitKeys = [.. new VitConfig { ConvTokenizer = new() }.ToJson().Select(kv => kv.Key)];
    private static readonly string[] MixerKeys = [.. new MixerConfig().ToJson().Select(kv => kv.Key)];

    private static ModelConfig ParseConfig(JsonObject o, string file, string at, bool strict)
    {
        var arch = o["architecture"] is JsonNode an ? Str(an, file, at + "architecture") : strict ? throw Error(file, $"missing key '{at}architecture'") : "vit";
        if (arch is not ("vit" or "mixer")) throw Error(file, $"key '{at}architecture': '{arch}' is neither 'vit' nor 'mixer'");
        if (strict) Known(o, file, at, arch == "vit" ? VitKeys : MixerKeys);
        int I(string k, int d) => o[k] is JsonNode n ? Int(n, file, at + k) : d;
        bool B(string k, bool d) => o[k] is JsonNode n ? Bool(n, file, at + k) : d;
        ModelConfig c = arch == "mixer" ? new MixerConfig() : new VitConfig();
        var gelu = o["gelu"] is JsonNode g ? Str(g, file, at + "gelu") : "erf";
        c = c with
        {
            ImageSize = I("img_size", c.ImageSize), PatchSize = I("patch_size", c.PatchSize), InChannels = I("in_chans", c.InChannels),
            EmbedDim = I("embed_dim", c.EmbedDim), Depth = I("depth", c.Depth), NumClasses = I("num_classes", c.NumClasses),
            LayerNormEps = o["layer_norm_eps"] is JsonNode e ? (float)Num(e, file, at + "layer_norm_eps") : c.LayerNormEps,
            Gelu = Act(gelu, file, at),
        };
        if (c is VitConfig v)
        {
            var pool = o["global_pool"] is JsonNode p ? Str(p, file, at + "global_pool") : "token";
            c = v with
            {
                NumHeads = I("num_heads", v.NumHeads), DimHead = I("dim_head", v.DimHead), MlpDim = I("mlp_dim", v.MlpDim),
                QkvBias = B("qkv_bias", v.QkvBias), ProjBias = B("proj_bias", v.ProjBias), QkNorm = B("qk_norm", v.QkNorm),
                LayerScale = B("layer_scale", v.LayerScale),
                InitValues = o["init_values"] is JsonNode iv ? (float)Num(iv, file, at + "init_values") : v.InitValues,
                ClassToken = B("class_token", v.ClassToken),
                DistToken = B("dist_token", v.DistToken), RegTokens = I("reg_tokens", v.RegTokens),
                NoEmbedClass = B("no_embed_class", v.NoEmbedClass), PreNorm = B("pre_norm", v.PreNorm),
                DynamicImgSize = B("dynamic_img_size", v.DynamicImgSize), PixelNorm = B("pixel_norm", v.PixelNorm),
                PatchEmbedNorm = B("patch_embed_norm", v.PatchEmbedNorm),
                Pool = pool switch
                {
                    "token" => Pooling.Token,
                    "avg" => Pooling.Avg,
                    "max" => Pooling.Max,
                    "map" => Pooling.Map,
                    "seq" => Pooling.Seq,
                    _ => throw Error(file, $"key '{at}global_pool': '{pool}' is none of 'token', 'avg', 'max', 'map', 'seq'"),
                },
                FcNorm = B("fc_norm", v.FcNorm), RepresentationSize = I("representation_size", v.RepresentationSize),
                ConvTokenizer = ConvTokenizerOf(o["conv_tokenizer"], file, at + "conv_tokenizer", strict),
            };
        }
        else if (c is MixerConfig m)
            c = m with { TokenMlpDim = I("token_mlp_dim", m.TokenMlpDim), ChannelMlpDim = I("channel_mlp_dim", m.ChannelMlpDim) };
        try { c.Validate(); }
        catch (VitSharpException ex) { throw Error(file, $"key '{at.TrimEnd('.')}': {ex.Message}"); }
        return c;
    }

    private static ConvTokenizerConfig? ConvTokenizerOf(JsonNode? n, string file, string key, bool strict)
    {
        if (n is null) return null;
        if (n is not JsonObject o) throw Error(file, $"key '{key}' must be an object (layers, channels)");
        if (strict) Known(o, file, key + ".", ConvTokenizerConfig.Keys);
        var d = new ConvTokenizerConfig();
        return new ConvTokenizerConfig
        {
            Layers = o["layers"] is JsonNode l ? Int(l, file, key + ".layers") : d.Layers,
            Channels = o["channels"] is JsonNode c ? Int(c, file, key + ".channels") : d.Channels,
        };
    }

    private static Activation Act(string name, string file, string at)
    {
        try { return ModelConfig.ParseActivation(name)!.Value; }
        catch (VitSharpException e) { throw Error(file, $"key '{at}gelu': {e.Message}"); }
    }

    private const string ErrorPrefix = $"metadata '{MetadataKey}': ";
    private static CheckpointException Error(string file, string message) => new(file, ErrorPrefix + message);

    private static void Known(JsonObject o, string file, string at, params string[] keys)
    {
        foreach (var (k, _) in o)
            if (Array.IndexOf(keys, k) < 0) throw Error(file, $"unknown key '{at}{k}'");
    }

    private static JsonNode ParseNode(string json, string file, string key)
    {
        try { return JsonNode.Parse(json) ?? throw new CheckpointException(file, $"metadata '{key}' is null"); }
        catch (JsonException e) { throw new CheckpointException(file, $"metadata '{key}' is not valid JSON: {e.Message}", inner: e); }
    }

    private static JsonObject Object(JsonNode n, string file, string key) =>
        n as JsonObject ?? throw new CheckpointException(file, $"metadata '{key}' is not a JSON object");

    private static T Value<T>(JsonNode n, string file, string key, string what)
    {
        if (n is JsonValue v && v.TryGetValue<T>(out var x)) return x;
        throw Error(file, $"key '{key}' must be {what}, not {n.ToJsonString()}");
    }

    private static int Int(JsonNode n, string file, string key) => Value<int>(n, file, key, "an integer");
    private static double Num(JsonNode n, string file, string key) => Value<double>(n, file, key, "a number");
    private static bool Bool(JsonNode n, string file, string key) => Value<bool>(n, file, key, "true or false");
    private static string Str(JsonNode n, string file, string key) => Value<string>(n, file, key, "a string");

    private static float[] Floats(JsonNode? n, string file, string key) => n is JsonArray a
        ? a.Select(x => x is null ? throw Error(file, $"key '{key}' holds a null") : (float)Num(x, file, key)).ToArray()
        : throw Error(file, $"key '{key}' must be an array of numbers");

    private static string[] Strings(JsonNode n, string file, string key) => n is JsonArray a
        ? a.Select(x => x is null ? throw Error(file, $"key '{key}' holds a null") : Str(x, file, key)).ToArray()
        : throw Error(file, $"key '{key}' must be an array of strings");

    /// <summary>One value per channel: a single value is repeated for the three of RGB (as the data pipeline does).</summary>
    private static float[] PerChannel(float[] v) => v.Length == 1 ? [v[0], v[0], v[0]] : v;
}

/// <summary>How a quantised file stores its weights (<see cref="QuantizationInfo.Scheme"/>).</summary>
public enum QuantizationScheme
{
    /// <summary>int8 per output channel, activations quantised per token at run time (CPU).</summary>
    Int8,
    /// <summary>FP8 E4M3 per tensor, with a calibrated static per-tensor input scale (CUDA, compute capability 8.9+).</summary>
    Fp8,
}

/// <summary>A stored FP8 weight: its E4M3 codes (row-major, out × in), w ≈ code · <paramref name="Scale"/>, and the static
/// scale of its input, x ≈ code · <paramref name="InputScale"/> (calibrated: max |x| / 448).</summary>
public sealed record Fp8Weight(byte[] Codes, float Scale, float InputScale);

/// <summary>
/// The <c>quantization</c> entry of <see cref="ModelMetadata"/>, one of two schemes (docs/QUANTIZATION.md, File format):
/// <list type="bullet">
/// <item><c>{"weights": "int8_symmetric_per_output_channel", "activations": "int8_dynamic_per_token", "tensors": [names]}</c>:
/// each named tensor is safetensors I8 (N, K) beside an F32 tensor <c>NAME_scale</c> (N): w[n, k] = q[n, k] · scale[n].</item>
/// <item><c>{"weights": "fp8_e4m3_per_tensor", "activations": "fp8_e4m3_static_per_tensor", "tensors": [names]}</c>: each
/// named Linear weight <c>M.weight</c> is safetensors F8_E4M3 (N, K) beside two F32 scalars, <c>M.weight_scale</c>
/// (w = code · weight_scale) and <c>M.input_scale</c> (the input is quantised as x / input_scale) — the names vLLM,
/// compressed-tensors and ModelOpt give them.</item>
/// </list>
/// Unknown keys or schemes are errors.
/// </summary>
public sealed record QuantizationInfo
{
    public const string WeightScheme = "int8_symmetric_per_output_channel";
    public const string ActivationScheme = "int8_dynamic_per_token";
    public const string Fp8WeightScheme = "fp8_e4m3_per_tensor";
    public const string Fp8ActivationScheme = "fp8_e4m3_static_per_tensor";
    /// <summary>The suffix of each quantised tensor's (weight) scale tensor: <c>M.weight</c> → <c>M.weight_scale</c>.</summary>
    public const string ScaleSuffix = "_scale";
    /// <summary>safetensors' dtype name for FP8 E4M3 (one byte a value).</summary>
    public const string Fp8DType = "F8_E4M3";

    public QuantizationScheme Scheme { get; init; } = QuantizationScheme.Int8;
    public required string[] Tensors { get; init; }

    /// <summary>An FP8 weight's input-scale tensor: <c>M.weight</c> → <c>M.input_scale</c>.</summary>
    public static string InputScaleName(string weight) =>
        weight.EndsWith(".weight", StringComparison.Ordinal) ? weight[..^"weight".Length] + "input_scale"
            : throw new ArgumentException($"{weight} is not a Linear weight (NAME.weight)");

    private HashSet<string>? _names;
    private HashSet<string> Names => _names ??= new HashSet<string>(Tensors, StringComparer.Ordinal);
    private HashSet<string>? _inputScales;
    private HashSet<string> InputScales => _inputScales ??= Scheme == QuantizationScheme.Fp8
        ? new HashSet<string>(Tensors.Select(InputScaleName), StringComparer.Ordinal) : [];

    /// <summary>Whether a quantised file's tensor is read (true), or null when this record does not cover it (the usual
    /// checks apply). An int8 tensor must be I8 of rank 2, its scale F32 of rank 1; an FP8 tensor F8_E4M3 of rank 2, its
    /// two scales F32 scalars (shape () or (1)).</summary>
    public bool? Wanted(SafeTensors.Entry e, string path)
    {
        bool fp8 = Scheme == QuantizationScheme.Fp8;
        string dtype = fp8 ? Fp8DType : "I8";
        if (Names.Contains(e.Name))
        {
            if (e.DType != dtype) throw new CheckpointException(path, $"dtype {e.DType} where the quantised weight must be {dtype} (metadata 'quantization' lists it)", e.Name);
            if (e.Shape.Length != 2) throw new CheckpointException(path, $"a quantised weight must be (out, in), not {Shape.Format(e.Shape)}", e.Name);
            return true;
        }
        bool weightScale = e.Name.EndsWith(ScaleSuffix, StringComparison.Ordinal) && Names.Contains(e.Name[..^ScaleSuffix.Length]);
        if (weightScale || InputScales.Contains(e.Name))
        {
            if (e.DType != "F32") throw new CheckpointException(path, $"dtype {e.DType} where a quantisation scale must be F32", e.Name);
            if (!fp8 && e.Shape.Length != 1) throw new CheckpointException(path, $"a quantisation scale must be (out), not {Shape.Format(e.Shape)}", e.Name);
            if (fp8 && !(e.Shape.Length == 0 || e.Shape is [1]))
                throw new CheckpointException(path, $"an FP8 scale is one value per tensor, shape () or (1), not {Shape.Format(e.Shape)}", e.Name);
            return true;
        }
        return null;
    }

    /// <summary>Replaces each int8 tensor read from <paramref name="path"/> by its dequantised floats q·scale (what the
    /// model's parameters hold), removes the scale tensors, and returns the int8 values and scales by name.</summary>
    public Dictionary<string, (sbyte[] Values, float[] Scales)> Dequantize(Dictionary<string, HostArray> w, string path)
    {
        if (Scheme != QuantizationScheme.Int8) throw new InvalidOperationException("Dequantize reads int8 files; an FP8 file: DequantizeFp8");
        var result = new Dictionary<string, (sbyte[], float[])>(StringComparer.Ordinal);
        foreach (var name in Tensors)
        {
            if (!w.TryGetValue(name, out var q))
                throw new CheckpointException(path, "metadata 'quantization' lists this tensor but the file does not hold it", name);
            if (!w.Remove(name + ScaleSuffix, out var scale))
                throw new CheckpointException(path, $"missing its scale tensor '{name}{ScaleSuffix}' (F32, one value per output channel)", name);
            int n = q.Shape[0], k = q.Shape[1];
            if (scale.Shape[0] != n)
                throw new CheckpointException(path, $"scale {Shape.Format(scale.Shape)} for a weight with {n} output channels", name + ScaleSuffix);
            foreach (var v in scale.Data)
                if (!(v >= 0) || !float.IsFinite(v))
                    throw new CheckpointException(path, $"scale {v} is not a finite non-negative number", name + ScaleSuffix);
            if (q.Source is MappedTensor { DType: "I8" } mapped)
            {
                // from a mapped file: the int8 values are copied once (the int8 weight's own), their floats are computed
                // from the mapping only if something asks for them (a model running int8 never does)
                var stored = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(mapped.Bytes).ToArray();
                mapped.File.DropPages(mapped.Offset, mapped.ByteLength);
                w[name] = new HostArray(q.Shape, new DequantizedTensor(mapped, scale.Data, n, k));
                result[name] = (stored, scale.Data);
                continue;
            }
            var values = new sbyte[q.Data.Length];
            for (int r = 0; r < n; r++)
                for (int i = 0; i < k; i++)
                {
                    long at = (long)r * k + i;
                    values[at] = (sbyte)q.Data[at];
                    q.Data[at] = values[at] * scale.Data[r];
                }
            result[name] = (values, scale.Data);
        }
        return result;
    }

    /// <summary>An FP8 file's counterpart of <see cref="Dequantize"/>: each F8_E4M3 tensor (read as its E4M3 values) becomes
    /// code · weight_scale (<see cref="Fp8.Decode"/>), the scale tensors are removed, and the codes (as stored, NaN codes
    /// included) and the two scales are returned by name. A scale that is not a finite positive number is an error.</summary>
    public Dictionary<string, Fp8Weight> DequantizeFp8(Dictionary<string, HostArray> w, string path)
    {
        if (Scheme != QuantizationScheme.Fp8) throw new InvalidOperationException("DequantizeFp8 reads FP8 files; an int8 file: Dequantize");
        float Scalar(string name, string tensor, string what)
        {
            if (!w.Remove(tensor, out var s))
                throw new CheckpointException(path, $"missing its {what} tensor '{tensor}' (F32, one value)", name);
            float v = s.Data[0];
            if (!(v > 0) || !float.IsFinite(v))
                throw new CheckpointException(path, $"{what} {v} is not a finite positive number", tensor);
            return v;
        }
        var result = new Dictionary<string, Fp8Weight>(StringComparer.Ordinal);
        foreach (var name in Tensors)
        {
            if (!w.TryGetValue(name, out var q))
                throw new CheckpointException(path, "metadata 'quantization' lists this tensor but the file does not hold it", name);
            float scale = Scalar(name, name + ScaleSuffix, "weight scale");
            float inputScale = Scalar(name, InputScaleName(name), "input scale");
            var codes = new byte[q.Data.Length];
            for (int i = 0; i < codes.Length; i++) codes[i] = Fp8.Code(q.Data[i]);
            w[name] = new HostArray(q.Shape, Fp8.Decode(codes, scale));
            result[name] = new Fp8Weight(codes, scale, inputScale);
        }
        return result;
    }

    public JsonObject ToJson() => new()
    {
        ["weights"] = Scheme == QuantizationScheme.Fp8 ? Fp8WeightScheme : WeightScheme,
        ["activations"] = Scheme == QuantizationScheme.Fp8 ? Fp8ActivationScheme : ActivationScheme,
        ["tensors"] = new JsonArray(Tensors.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
    };
}
