using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Models;

namespace VitSharp.Checkpoints;

/// <summary>
/// A checkpoint read into canonical (timm) names with the model configuration it implies. The format is detected from
/// the file: safetensors (timm, Hugging Face or VitSharp names), Google .npz, or a Hugging Face folder.
/// </summary>
public sealed partial record Checkpoint : IDisposable
{
    /// <summary>Keys of files written before <see cref="ModelMetadata"/> (still read; new files carry
    /// <see cref="ModelMetadata.MetadataKey"/> only).</summary>
    public const string ConfigMetadataKey = ModelMetadata.LegacyConfigKey;
    public const string LabelsMetadataKey = ModelMetadata.LegacyLabelsKey;
    /// <summary>A training checkpoint's position; such a file also holds optimizer ("optim.") and EMA ("ema.") tensors.</summary>
    public const string TrainStateMetadataKey = "vitsharp.train_state";

    public required string Path { get; init; }
    public required string Format { get; init; }
    public required ModelConfig Config { get; init; }
    public required Dictionary<string, HostArray> Weights { get; init; }
    public string[]? Labels { get; init; }
    /// <summary>Preprocessing the checkpoint's authors state (timm's pretrained_cfg, HF's preprocessor_config.json), if any.</summary>
    public JsonObject? PreprocessHints { get; init; }
    /// <summary>The family the names were read as (e.g. "timm", "huggingface dinov2", a name map's name), and why.</summary>
    public string? Family { get; init; }
    public string? FamilyReason { get; init; }
    /// <summary>The record a VitSharp-written file carries (config, preprocessing, class names), if any.</summary>
    public ModelMetadata? Metadata { get; init; }
    /// <summary>A quantised file's int8 weights (values and per-channel scales) by name; <see cref="Weights"/> then holds
    /// their dequantised floats. Null for any other file.</summary>
    public IReadOnlyDictionary<string, (sbyte[] Values, float[] Scales)>? Int8Weights { get; init; }
    /// <summary>An FP8 file's weights (E4M3 codes as stored, weight and input scales) by name; <see cref="Weights"/> then
    /// holds their dequantised floats code · scale, so the model loads on any backend. Null for any other file.</summary>
    public IReadOnlyDictionary<string, Fp8Weight>? Fp8Weights { get; init; }

    /// <summary>The mapping the weights are read from (<see cref="LoadOptions.MapWeights"/>), or null when they were
    /// read into memory. Disposing the checkpoint releases it; arrays whose floats were never asked for can then no
    /// longer be read (a model built from them holds its own lease).</summary>
    public MappedLease? Mapping { get; init; }

    /// <summary>Whether <see cref="Weights"/> view a mapped file.</summary>
    public bool IsMapped => Mapping is not null;

    /// <summary>Releases the mapping, if any (no-op for a checkpoint read into memory).</summary>
    public void Dispose() => Mapping?.Dispose();

    public static Checkpoint Load(string path, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        if (Directory.Exists(path)) return LoadFolder(path, options);
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        if (SafeTensors.LooksLike(path))
        {
            MappedLease? lease = null;
            try
            {
                var ck = LoadSafeTensors(path, options, ref lease);
                return lease is null ? ck : ck with { Mapping = lease };
            }
            catch { lease?.Dispose(); throw; }
        }
        return LoadOther(path, options);
    }

    private static Checkpoint LoadSafeTensors(string path, LoadOptions options, ref MappedLease? lease)
    {
        {
            QuantizationInfo? quant = null;
            bool headerRead = false;
            Func<SafeTensors.Entry, IReadOnlyDictionary<string, string>, bool> wanted = (e, m) =>
            {
                if (!headerRead) { headerRead = true; quant = ModelMetadata.Read(m, path)?.Quantization; }
                return quant?.Wanted(e, path) ?? Wanted(e, m, path, options.NameMap);
            };
            Dictionary<string, string> meta;
            Dictionary<string, HostArray> read;
            if (options.MapWeights == true) { read = SafeTensors.Map(path, out meta, wanted, options.MaxTotalBytes, out var l); lease = l; }
            else read = SafeTensors.Read(path, out meta, wanted, options.MaxTotalBytes);
            var w = Finite(read, path, options);
            var md = ModelMetadata.Read(meta, path);
            if (md?.Quantization is { } q)
            {
                // A quantised file (VitSharp writes it, timm names): int8 / FP8 tensors become code·scale floats, the
                // stored codes and scales kept.
                if (options.NameMap is not null) throw new CheckpointException(path, "a quantised file holds timm names: --name-map does not apply");
                var hintJson = ParseJson(md.Config.ToJson().ToJsonString(), path);
                if (q.Scheme == QuantizationScheme.Fp8)
                {
                    var fp8 = q.DequantizeFp8(w, path);
                    return Build(path, "vitsharp-fp8-safetensors", w, hintJson, md.Labels, options) with { Metadata = md, Fp8Weights = fp8 };
                }
                var int8 = q.Dequantize(w, path);
                return Build(path, "vitsharp-int8-safetensors", w, hintJson, md.Labels, options) with { Metadata = md, Int8Weights = int8 };
            }
            if (options.NameMap is { } userMap) return ByMap(path, "safetensors", w, userMap, options, user: true) with { Metadata = md };
            JsonObject? hint = md is null ? null : ParseJson(md.Config.ToJson().ToJsonString(), path); // parsed: numbers read as any type
            string[]? labels = md?.Labels;
            if (meta.ContainsKey(TrainStateMetadataKey)) // a training checkpoint: the model's weights without optimizer and EMA state
                foreach (var k in w.Keys.Where(k => k.StartsWith("optim.", StringComparison.Ordinal) || k.StartsWith("ema.", StringComparison.Ordinal)).ToList())
                    w.Remove(k);
            var sideConfig = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, "config.json");
            if (HuggingFaceNames.IsHuggingFace(w) && File.Exists(sideConfig)) return LoadFolder(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, options);
            if (HuggingFaceNames.IsHuggingFace(w)) return Build(path, "huggingface-safetensors", HuggingFaceNames.ToTimm(w, path), null, labels, options) with { Metadata = md };
            if (GoogleNames.IsGoogle(w)) return Build(path, "google-safetensors", GoogleNames.ToTimm(w, path), hint, labels, options, GoogleNames.Heads(w)) with { Metadata = md };
            if (NameMap.Find(w.Keys) is { } shipped) return ByMap(path, "safetensors", w, shipped, options, user: false) with { Metadata = md };
            return Build(path, "timm-safetensors", w, hint, labels, options) with { Metadata = md };
        }
    }

    private static Checkpoint LoadOther(string path, LoadOptions options)
    {
        if (PyTorchPickle.LooksLike(path))
        {
            // As for safetensors: from the pickle's names, before any storage is inflated, integer buffers are skipped and
            // tensors no supported naming (or name map) uses are refused.
            var w = Finite(PyTorchPickle.Read(path, options.MaxTotalBytes, n =>
                n.EndsWith("position_ids", StringComparison.Ordinal) || n.EndsWith("num_batches_tracked", StringComparison.Ordinal) ? false
                : options.NameMap?.Covers(n) == true || NameMap.Shipped.Any(m => m.Covers(n)) || KnownName().IsMatch(n) ? true
                : throw new CheckpointException(path, "no model VitSharp reads (by timm, Hugging Face or Google names, or a name map) uses this tensor; refused before reading its storage", n)),
                path, options);
            if (options.NameMap is { } userMap) return ByMap(path, "pytorch", w, userMap, options, user: true);
            if (HuggingFaceNames.IsHuggingFace(w)) return Build(path, "huggingface-pytorch", HuggingFaceNames.ToTimm(w, path), null, null, options);
            if (NameMap.Find(w.Keys) is { } shipped) return ByMap(path, "pytorch", w, shipped, options, user: false);
            return Build(path, "pytorch", w, null, null, options);
        }
        if (Npz.LooksLike(path))
        {
            // The names say which arrays a model can use before any is inflated: the others (a Google optimizer's
            // state aside, which is skipped) are refused unread.
            var names = Npz.Names(path);
            if (BigVisionTwoTower.Prefix(names) is not null) return LoadTwoTowerImage(path, options);
            bool google = names.Any(n => n.EndsWith("embedding/kernel", StringComparison.Ordinal) || n.EndsWith("stem/kernel", StringComparison.Ordinal));
            var w = Npz.Read(path, n =>
                KnownName().IsMatch(n) ? true
                : google && n.StartsWith("opt/", StringComparison.Ordinal) ? false
                : throw new CheckpointException(path, google ? "no part of a Google ViT/Mixer uses this array; refused before inflating it"
                    : "no model VitSharp reads (by timm or Google names) uses this array; refused before inflating it", n), options.MaxTotalBytes);
            Finite(w, path, options);
            if (w.Count == 0) throw new CheckpointException(path, "zip archive without .npy arrays (a PyTorch .pt file? convert it to safetensors)");
            if (GoogleNames.IsGoogle(w)) return Build(path, "google-npz", GoogleNames.ToTimm(w, path), null, null, options, GoogleNames.Heads(w));
            return Build(path, "npz", w, null, null, options);
        }
        throw new CheckpointException(path, "unrecognised checkpoint format (expected .safetensors, Google .npz, a PyTorch .pt/.bin or a Hugging Face folder)");
    }

    /// <summary>A big_vision two-tower .npz (<see cref="BigVisionTwoTower"/>): its image tower, as a Hugging Face
    /// CLIP/SigLIP folder loads as its image tower; the text tower and the temperature are skipped unread. Every array of
    /// the tower must be one the model uses; GELU is flax's tanh approximation unless the options say otherwise.</summary>
    private static Checkpoint LoadTwoTowerImage(string path, LoadOptions options)
    {
        var img = BigVisionTwoTower.ReadTower(path, "img", options.MaxTotalBytes, out var prefix);
        Finite(img, path, options);
        var w = GoogleNames.ToTimm(img, path, strict: true, shown: prefix + "img/");
        return Build(path, "google-npz", w, BigVisionTwoTower.ImageHint(), null, options, GoogleNames.Heads(img)) with
        {
            Family = "big_vision two-tower",
            FamilyReason = $"its arrays are under {prefix}img/ and {prefix}txt/ (the image tower is loaded)",
        };
    }

    /// <summary>The non-finite check of every load (<see cref="LoadOptions.AllowNonFinite"/>), for a two-tower model's
    /// text tower.</summary>
    internal static void CheckFinite(Dictionary<string, HostArray> w, string path, LoadOptions options) => Finite(w, path, options);

    /// <summary>Which safetensors tensors a checkpoint load reads, decided from the header before any data is read: a
    /// training file's optimizer/EMA state and integer buffers (position_ids) are skipped; names that no supported naming
    /// (timm, Hugging Face, Google) can use, and integer data where a weight must be, are refused.</summary>
    /// <summary>Renamed by a name map (the user's, or the shipped one for the family its names are): the map's config
    /// values are the hint, the caller's options still override them.</summary>
    private static Checkpoint ByMap(string path, string format, Dictionary<string, HostArray> w, NameMap map, LoadOptions o, bool user)
    {
        var mapped = map.Apply(w, path, o.ImageSize);
        var built = Build(path, $"{format}+name-map", mapped, map.Hint(), null, o);
        return built with
        {
            Family = map.Name,
            FamilyReason = user ? $"renamed by the name map {map.Source}"
                : $"its tensor names match the shipped name map {map.Source} ({string.Join(", ", map.Detect.Select(d => d.ToString()))})",
        };
    }

    internal static bool Wanted(SafeTensors.Entry e, IReadOnlyDictionary<string, string> meta, string path, NameMap? map = null)
    {
        if (meta.ContainsKey(TrainStateMetadataKey) && (e.Name.StartsWith("optim.", StringComparison.Ordinal) || e.Name.StartsWith("ema.", StringComparison.Ordinal)))
            return false;
        if (!SafeTensors.IsFloat(e.DType))
        {
            if (e.Name.EndsWith("position_ids", StringComparison.Ordinal) || e.Name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) return false;
            throw new CheckpointException(path, $"dtype {e.DType} where a floating-point weight must be (F32, F16, BF16 or F64)", e.Name);
        }
        if (map?.Covers(e.Name) == true || NameMap.Shipped.Any(m => m.Covers(e.Name))) return true;
        if (!KnownName().IsMatch(e.Name))
            throw new CheckpointException(path, $"no model VitSharp reads (by timm, Hugging Face or Google names) uses this tensor {Tensors.Shape.Format(e.Shape)}; refused before reading its {e.End - e.Begin} bytes", e.Name);
        return true;
    }

    [System.Text.RegularExpressions.GeneratedRegex(
        @"^((patch_embed|tokenizer|cls_token|dist_token|reg_token|pos_embed|blocks|norm|fc_norm|head|head_dist|pre_logits|stem|norm_pre|attn_pool|attention_pool)(\.|$)" +
        @"|(vit\.|deit\.|vision_model\.)?(embeddings|encoder|layernorm|pooler|pre_layrnorm|post_layernorm|head)\.|(cls_|distillation_)?classifier\.|visual_projection\." +
        @"|(params/|opt/target/)?(embedding|stem|cls|pos_embedding|Transformer|MixerBlock_\d+|pre_head_layer_norm|pre_logits|head|MAPHead_0)(/|$))")]
    private static partial System.Text.RegularExpressions.Regex KnownName();

    private static Checkpoint LoadFolder(string dir, LoadOptions options)
    {
        var configPath = System.IO.Path.Combine(dir, "config.json");
        var weightsPath = System.IO.Path.Combine(dir, "model.safetensors");
        if (!File.Exists(configPath)) throw new CheckpointException(dir, "folder has no config.json (expected a Hugging Face model folder)");
        if (!File.Exists(weightsPath)) weightsPath = System.IO.Path.Combine(dir, "pytorch_model.bin");
        if (!File.Exists(weightsPath)) throw new CheckpointException(dir, "folder has neither model.safetensors nor pytorch_model.bin");
        var cfg = ParseJson(File.ReadAllText(configPath), configPath);
        if (cfg["architecture"] is not null && cfg["model_type"] is null) return LoadTimmFolder(dir, cfg, configPath, options);
        var modelType = JsonString(cfg, "model_type", configPath);
        // A whole CLIP or SigLIP model: its image tower (vision_config, vision_model.*) is what VitSharp runs; the text
        // tower's tensors are skipped unread. CLIP's visual_projection becomes the head: logits are the image embeddings.
        bool towers = modelType is "clip" or "siglip";
        if (towers)
        {
            cfg = cfg["vision_config"] as JsonObject ?? throw new CheckpointException(configPath, $"model_type '{modelType}' without a 'vision_config' object");
            modelType += "_vision_model";
        }
        if (modelType is not null && Array.IndexOf(HuggingFaceModelTypes, modelType) < 0)
            throw new CheckpointException(configPath, $"model_type '{modelType}' is not supported (expected one of {string.Join(", ", HuggingFaceModelTypes)})");
        if (JsonBool(cfg, "use_swiglu_ffn", configPath) == true)
            throw new CheckpointException(configPath, "'use_swiglu_ffn' is true: DINOv2's SwiGLU MLP is not supported");
        var w = Finite(weightsPath.EndsWith(".bin", StringComparison.Ordinal) ? PyTorchPickle.Read(weightsPath, options.MaxTotalBytes)
            : SafeTensors.Read(weightsPath, out _, (e, m) => towers && TextTower(e.Name) ? false : Wanted(e, m, weightsPath), options.MaxTotalBytes), weightsPath, options);
        if (towers) foreach (var k in w.Keys.Where(TextTower).ToList()) w.Remove(k);
        if (!HuggingFaceNames.IsHuggingFace(w)) throw new CheckpointException(weightsPath, "tensor names are not Hugging Face ViT, DeiT, DINOv2, CLIP or SigLIP vision names");
        var eps = JsonNumber(cfg, "layer_norm_eps", configPath) ?? (modelType is "clip_vision_model" ? 1e-5 : modelType is "dinov2" or "dinov2_with_registers" or "siglip_vision_model" ? 1e-6 : 1e-12);
        if (!(eps > 0 && eps < 1)) throw new CheckpointException(configPath, $"'layer_norm_eps' must be in (0, 1), not {eps}");
        var heads = JsonInt(cfg, "num_attention_heads", configPath);
        if (heads is <= 0) throw new CheckpointException(configPath, $"'num_attention_heads' must be positive, not {heads}");
        var hint = new JsonObject
        {
            ["num_heads"] = heads,
            ["layer_norm_eps"] = eps,
            ["gelu"] = JsonString(cfg, "hidden_act", configPath) ?? "gelu",
        };
        string[]? labels = null;
        if (cfg["id2label"] is JsonObject id2label && id2label.Count > 0)
        {
            labels = new string[id2label.Count];
            foreach (var (k, v) in id2label)
                if (int.TryParse(k, out var i) && i >= 0 && i < labels.Length) labels[i] = (string?)v ?? k;
            if (labels.Select((l, i) => l == $"LABEL_{i}").All(x => x)) labels = null; // generic names say nothing
        }
        var preprocessorPath = System.IO.Path.Combine(dir, "preprocessor_config.json");
        var pre = File.Exists(preprocessorPath) ? ParseJson(File.ReadAllText(preprocessorPath), preprocessorPath) : null;
        var built = Build(weightsPath, "huggingface", HuggingFaceNames.ToTimm(w, weightsPath), hint, labels, options) with
        {
            PreprocessHints = pre,
            Family = $"Hugging Face {modelType ?? HuggingFaceNames.Family(w)}",
            FamilyReason = $"a Hugging Face folder: config.json's model_type is '{modelType ?? "(none)"}', tensor names are {HuggingFaceNames.Family(w)}'s",
        };
        CheckAgainstWeights(cfg, configPath, built.Config, options);
        return built;
    }

    /// <summary>Refuses a Hugging Face config.json whose sizes contradict the shapes of the weights beside it.</summary>
    private static void CheckAgainstWeights(JsonObject cfg, string configPath, ModelConfig c, LoadOptions o)
    {
        void Same(string key, int actual, string what)
        {
            if (JsonInt(cfg, key, configPath) is int stated && stated != actual)
                throw new CheckpointException(configPath, $"'{key}' is {stated}, but the weights have {what} {actual}");
        }
        Same("hidden_size", c.EmbedDim, "width");
        Same("patch_size", c.PatchSize, "patch size");
        Same("num_channels", c.InChannels, "input channels");
        Same("num_hidden_layers", c.Depth, "layers");
        if (o.ImageSize is null) Same("image_size", c.ImageSize, "a position embedding for image size");
        if (c is VitConfig v && v.Depth > 0) Same("intermediate_size", v.MlpDim, "MLP width");
    }

    private static bool TextTower(string name) =>
        name.StartsWith("text_model.", StringComparison.Ordinal) || name.StartsWith("text_projection.", StringComparison.Ordinal)
        || name is "logit_scale" or "logit_bias";

    /// <summary>The Hugging Face model types whose folders load (config.json's model_type; whole "clip" and "siglip"
    /// models load their image tower).</summary>
    public static readonly string[] HuggingFaceModelTypes = ["vit", "deit", "dinov2", "dinov2_with_registers", "clip_vision_model", "siglip_vision_model"];

    private static bool? JsonBool(JsonObject cfg, string key, string file) => Value(cfg, key) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        var n => throw new CheckpointException(file, $"'{key}' must be true or false, not {n.ToJsonString()}"),
    };

    private static JsonNode? Value(JsonObject cfg, string key) => cfg[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Null ? null : cfg[key];

    private static int? JsonInt(JsonObject cfg, string key, string file) => Value(cfg, key) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) => i,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (int)d,
        var n => throw new CheckpointException(file, $"'{key}' must be an integer, not {n.ToJsonString()}"),
    };

    private static double? JsonNumber(JsonObject cfg, string key, string file) => Value(cfg, key) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) => d,
        var n => throw new CheckpointException(file, $"'{key}' must be a number, not {n.ToJsonString()}"),
    };

    private static string? JsonString(JsonObject cfg, string key, string file) => Value(cfg, key) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var n => throw new CheckpointException(file, $"'{key}' must be a string, not {n.ToJsonString()}"),
    };

    /// <summary>Refuses NaN or ±Inf in any tensor (by name) unless <see cref="LoadOptions.AllowNonFinite"/>: such weights
    /// make every output NaN.</summary>
    private static Dictionary<string, HostArray> Finite(Dictionary<string, HostArray> w, string path, LoadOptions o)
    {
        if (o.AllowNonFinite) return w;
        float[]? chunk = null;
        foreach (var (name, a) in w)
        {
            if (a.Source is MappedTensor { DType: "I8" or "U8" or "BOOL" or "I16" or "I32" }) continue; // integers: always finite
            if (a.Source is MappedTensor mt && mt.TryF32(out var stored)) { Check(stored, 0, name); mt.File.DropPages(mt.Offset, mt.ByteLength); continue; }
            if (a.Source is MappedTensor other)
            {
                // other stored dtypes are checked in widened chunks, never held as floats here
                chunk ??= new float[1 << 16];
                long per = chunk.Length, n = a.Count;
                int size = (int)(other.ByteLength / Math.Max(n, 1));
                for (long at = 0; at < n; at += per)
                {
                    int len = (int)Math.Min(per, n - at);
                    SafeTensors.Decode(other.DType, other.Bytes.Slice((int)(at * size), len * size), chunk.AsSpan(0, len));
                    Check(chunk.AsSpan(0, len), at, name);
                }
                other.File.DropPages(other.Offset, other.ByteLength);
                continue;
            }
            Check(a.Data, 0, name);
        }
        return w;

        void Check(ReadOnlySpan<float> d, long first, string name)
        {
            // The first NaN if there is one, else the largest magnitude: non-finite exactly when the tensor holds NaN or ±Inf.
            int i = System.Numerics.Tensors.TensorPrimitives.IndexOfMaxMagnitude(d) is var m && m >= 0 && !float.IsFinite(d[m]) ? m : -1;
            if (i < 0) return;
            long bad = 0;
            foreach (var x in d) if (!float.IsFinite(x)) bad++;
            if (first > 0 || d.Length < w[name].Count) bad = CountNonFinite(w[name]);
            throw new CheckpointException(path, $"{bad} non-finite values (the first, {d[i]}, at element {first + i}); --allow-non-finite (LoadOptions.AllowNonFinite) loads them anyway", name);
        }
    }

    private static long CountNonFinite(HostArray a)
    {
        long bad = 0;
        foreach (var x in a.Data) if (!float.IsFinite(x)) bad++;
        return bad;
    }

    /// <summary>A timm model folder as the Hugging Face hub serves it: config.json names the architecture, states
    /// num_classes, label_names and pretrained_cfg (input size, interpolation, crop_pct, mean, std).</summary>
    private static Checkpoint LoadTimmFolder(string dir, JsonObject cfg, string configPath, LoadOptions options)
    {
        var weightsPath = System.IO.Path.Combine(dir, "model.safetensors");
        if (!File.Exists(weightsPath)) weightsPath = System.IO.Path.Combine(dir, "pytorch_model.bin");
        if (!File.Exists(weightsPath)) throw new CheckpointException(dir, "folder has neither model.safetensors nor pytorch_model.bin");
        var w = Finite(weightsPath.EndsWith(".bin", StringComparison.Ordinal) ? PyTorchPickle.Read(weightsPath, options.MaxTotalBytes) : SafeTensors.Read(weightsPath, out _, (e, m) => Wanted(e, m, weightsPath), options.MaxTotalBytes), weightsPath, options);
        var arch = JsonString(cfg, "architecture", configPath) ?? "";
        var preset = Models.Presets.All.TryGetValue(arch.Split('.')[0], out var p) ? p : null;
        var hint = new JsonObject();
        if (preset is VitConfig pv) hint["num_heads"] = pv.NumHeads;
        // timm's model names say what the weights cannot: its CLIP towers use torch's LayerNorm eps (1e-5), its
        // *_quickgelu variants OpenAI's QuickGELU.
        var baseName = arch.Split('.')[0];
        if (baseName.Contains("_clip_", StringComparison.Ordinal)) hint["layer_norm_eps"] = 1e-5;
        if (baseName.Contains("quickgelu", StringComparison.Ordinal)) hint["gelu"] = "quick_gelu";
        if (JsonString(cfg, "global_pool", configPath) is { Length: > 0 } topPool) hint["global_pool"] = topPool;
        if (cfg["model_args"] is JsonObject args)
        {
            if (JsonInt(args, "num_heads", configPath) is int heads) hint["num_heads"] = heads;
            if (JsonString(args, "global_pool", configPath) is { Length: > 0 } pool) hint["global_pool"] = pool;
            if (JsonString(args, "act_layer", configPath) is { } act) hint["gelu"] = act;
            if (JsonBool(args, "dynamic_img_size", configPath) is bool dyn) hint["dynamic_img_size"] = dyn;
        }
        string[]? labels = cfg["label_names"] is JsonArray names ? ParseLabels(names, configPath) : null;
        return Build(weightsPath, "timm-folder", w, hint, labels, options) with { PreprocessHints = cfg["pretrained_cfg"] as JsonObject };
    }

    private static Checkpoint Build(string path, string format, Dictionary<string, HostArray> w, JsonObject? hint,
        string[]? labels, LoadOptions o, int? formatHeads = null)
    {
        if (o.DimHead is int dimHead && o.Heads is null)
        {
            // A head width given alone fixes the head count: inner width / dim_head.
            hint = hint is null ? new JsonObject() : (JsonObject)hint.DeepClone();
            hint.Remove("num_heads");
            hint["dim_head"] = dimHead;
        }
        var config = ConfigInference.Infer(w, path, hint, o.Heads ?? formatHeads);
        config = Override(config, o, path);
        if (config is VitConfig v && w.TryGetValue("pos_embed", out var pos))
        {
            int prefix = v.NoEmbedClass ? 0 : v.PrefixTokens;
            int oldGrid = (int)Math.Round(Math.Sqrt(pos.Shape[1] - prefix));
            if (oldGrid != v.GridSize)
                pos = PositionEmbedding.Resample(pos, prefix, (oldGrid, oldGrid), (v.GridSize, v.GridSize), o.PosEmbedInterpolation);
            if (v.NoEmbedClass && v.PrefixTokens > 0)
            {
                int d = pos.Shape[2], k = v.PrefixTokens;
                pos = HostArray.Concat0(new HostArray([k, d], new float[k * d]), pos.Reshape(pos.Shape[1], d)).Reshape(1, pos.Shape[1] + k, d);
            }
            w["pos_embed"] = pos;
        }
        // A patch projection without bias (timm's pre_norm/CLIP towers, vit-pytorch) gets a zero one: the same function.
        if (config is VitConfig && w.TryGetValue("patch_embed.proj.weight", out var pw) && !w.ContainsKey("patch_embed.proj.bias"))
            w["patch_embed.proj.bias"] = new HostArray([pw.Shape[0]], new float[pw.Shape[0]]);
        return new Checkpoint { Path = path, Format = format, Config = config, Weights = w, Labels = labels };
    }

    private static ModelConfig Override(ModelConfig c, LoadOptions o, string path)
    {
        if (o.ImageSize is int size && size != c.ImageSize)
        {
            if (c is MixerConfig) throw new CheckpointException(path, "an MLP-Mixer cannot run at another resolution: its token MLP is sized to the patch count");
            if (size <= 0 || size % c.PatchSize != 0) throw new VitSharpException($"image size {size} is not a positive multiple of the patch size {c.PatchSize}");
            c = c with { ImageSize = size };
        }
        if (o.Gelu is { } g) c = c with { Gelu = g };
        if (o.LayerNormEps is { } eps) c = c with { LayerNormEps = eps };
        if (c is VitConfig v)
        {
            if (o.Heads is not null || o.DimHead is not null)
            {
                // The attention's inner width is what the weights fix; heads and head width must split it.
                int inner = v.InnerDim;
                int h = o.Heads ?? (o.DimHead > 0 && inner % o.DimHead.Value == 0 ? inner / o.DimHead.Value
                    : throw new CheckpointException(path, $"attention width {inner} is not a multiple of --dim-head {o.DimHead}"));
                if (h <= 0 || inner % h != 0) throw new CheckpointException(path, $"attention width {inner} is not divisible by {h} heads");
                int dh = o.DimHead ?? inner / h;
                if (h * dh != inner)
                    throw new CheckpointException(path, $"{h} heads × dim_head {dh} = {h * dh}, but the weights' attention is {inner} wide");
                v = v with { NumHeads = h, DimHead = inner == v.EmbedDim ? 0 : dh };
            }
            if (o.DynamicImgSize is { } dyn) v = v with { DynamicImgSize = dyn };
            if (o.Pool is { } p) v = v with { Pool = p, FcNorm = p is Pooling.Avg or Pooling.Max && v.FcNorm };
            if (v.Pool == Pooling.Token && !v.ClassToken) throw new CheckpointException(path, "token pooling needs a class token, and this model has none");
            c = v;
        }
        if (!(c.LayerNormEps > 0 && c.LayerNormEps < 1))
            throw new CheckpointException(path, $"LayerNorm eps {c.LayerNormEps} is not in (0, 1): every output would be NaN or meaningless");
        c.Validate();
        return c;
    }

    /// <summary>Builds the model on a backend and loads these weights into it.</summary>
    public VisionModel CreateModel(IBackend backend)
    {
        var model = VisionModel.Create(Config, backend);
        try { model.Load(Weights, Path); }
        catch { model.Dispose(); throw; }
        return model;
    }

    /// <summary>Saves canonical weights (atomically) with their <see cref="ModelMetadata"/>: the configuration, the
    /// preprocessing (default: timm's recipe at the model's size, the convention for timm names) and the labels.</summary>
    public static void Save(string path, ModelConfig config, IReadOnlyDictionary<string, HostArray> weights, string[]? labels = null,
        Data.Transforms.PreprocessRecipe? preprocess = null) =>
        Save(path, new ModelMetadata
        {
            Config = config, Labels = labels,
            Preprocess = (preprocess ?? Data.Transforms.PreprocessRecipe.Timm(config.ImageSize)) with { ImageSize = config.ImageSize },
        }, weights);

    /// <summary>Saves canonical weights (atomically) with this record under <see cref="ModelMetadata.MetadataKey"/>
    /// (a record read from an older file without a recipe gets the timm convention it was read with).</summary>
    public static void Save(string path, ModelMetadata metadata, IReadOnlyDictionary<string, HostArray> weights) =>
        SafeTensors.Write(path, weights, (metadata with
        {
            Preprocess = metadata.Preprocess ?? Data.Transforms.PreprocessRecipe.Timm(metadata.Config.ImageSize),
        }).ToSafeTensorsMetadata());

    public static string[] ParseLabels(JsonNode? node, string file) => node switch
    {
        JsonArray a => a.Select(x => (string?)x ?? "").ToArray(),
        _ => throw new CheckpointException(file, "labels must be a JSON array of strings"),
    };

    private static JsonObject ParseJson(string text, string file)
    {
        try { return JsonNode.Parse(text) as JsonObject ?? throw new CheckpointException(file, "JSON is not an object"); }
        catch (JsonException e) { throw new CheckpointException(file, $"invalid JSON: {e.Message}", inner: e); }
    }
}
