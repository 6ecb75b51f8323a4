using VitSharp.Models;

namespace VitSharp.Checkpoints;

/// <summary>
/// What <c>vit info</c> explains about a checkpoint: the family its names were read as and why, and for a checkpoint
/// VitSharp refuses, the tensors it could not place, the nearest names it knows for each, and what would help.
/// </summary>
public sealed record Diagnosis
{
    public required string Path { get; init; }
    public Checkpoint? Checkpoint { get; init; }
    public string? Family { get; init; }
    public string? Reason { get; init; }
    /// <summary>Why the checkpoint cannot load (null: it loads and every tensor has a place).</summary>
    public string? Error { get; init; }
    public IReadOnlyList<Unplaced> UnplacedTensors { get; init; } = [];
    public string? Advice { get; init; }

    /// <summary>A tensor the model has no place for: its name and shape, and the nearest names the model does take.</summary>
    public sealed record Unplaced(string Name, int[] Shape, IReadOnlyList<string> Nearest);

    /// <summary>Loads the checkpoint as <see cref="Checkpoint.Load"/> does, then checks every tensor against the layout
    /// of the model it implies; on failure, lists the tensors no known name fits.</summary>
    public static Diagnosis Of(string path, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        Checkpoint ckpt;
        try { ckpt = Checkpoint.Load(path, options); }
        catch (CheckpointException e)
        {
            var raw = RawNames(path);
            // A prefix every name shares (a wrapper module: "model.", "backbone.") is set aside before comparing.
            var prefix = raw is { Count: > 1 } ? CommonPrefix(raw.Select(n => n.Name)) : "";
            var unplaced = raw is null ? [] : raw.Where(n => !Placeable(n.Name)).Select(n => new Unplaced(n.Name, n.Shape, Nearest(n.Name[prefix.Length..]))).ToList();
            var advice = AdviceFor(unplaced.Count);
            if (prefix.Length > 0)
                advice = $"every name starts with '{prefix}': a first rule {{\"from\": \"^{System.Text.RegularExpressions.Regex.Escape(prefix).Replace("\\", "\\\\")}\", \"to\": \"\"}} removes it; " + advice;
            return new Diagnosis
            {
                Path = path, Error = e.Message, UnplacedTensors = unplaced, Advice = advice,
                Family = raw is null ? null : "unrecognised (not timm, Hugging Face, Google, nor a shipped name map's layout)",
            };
        }
        var (family, reason) = (ckpt.Family, ckpt.FamilyReason);
        family ??= ckpt.Format switch
        {
            "timm-safetensors" or "pytorch" or "npz" or "timm-folder" => ckpt.Config is MixerConfig ? "timm MlpMixer" : "timm VisionTransformer",
            var f when f.StartsWith("google", StringComparison.Ordinal) => "Google vision_transformer / big_vision",
            var f when f.StartsWith("huggingface", StringComparison.Ordinal) => "Hugging Face transformers",
            var f => f,
        };
        reason ??= ckpt.Metadata is not null ? "a VitSharp file: its metadata states the configuration"
            : ckpt.Format.StartsWith("google", StringComparison.Ordinal) ? "Google names (embedding/kernel, Transformer/encoderblock_N/…)"
            : ckpt.Format.StartsWith("huggingface", StringComparison.Ordinal) ? "Hugging Face names (embeddings.patch_embeddings…, encoder.layer.N…)"
            : $"timm names ({(ckpt.Config is MixerConfig ? "stem.proj.weight" : "patch_embed.proj.weight")}, blocks.N.…); options from the keys: {Options(ckpt.Config)}";
        var layout = (ckpt.Config is VitConfig v ? VisionTransformer.Layout(v) : MlpMixer.Layout((MixerConfig)ckpt.Config)).ToDictionary(l => l.Item1, l => l.Item2);
        var extra = ckpt.Weights.Where(kv => !layout.ContainsKey(kv.Key)).Select(kv => new Unplaced(kv.Key, kv.Value.Shape, Nearest(kv.Key, layout.Keys))).ToList();
        var missing = layout.Keys.Where(k => !ckpt.Weights.ContainsKey(k)).ToList();
        string? error = extra.Count > 0 ? $"{extra.Count} tensor(s) have no place in the model the others imply"
            : missing.Count > 0 ? $"the model needs {missing.Count} tensor(s) the checkpoint lacks ({string.Join(", ", missing.Take(4))})" : null;
        return new Diagnosis
        {
            Path = path, Checkpoint = ckpt, Family = family, Reason = reason, Error = error, UnplacedTensors = extra,
            Advice = error is null ? null : AdviceFor(extra.Count),
        };
    }

    private static string Options(ModelConfig c) => c is not VitConfig v ? "none" : string.Join(", ", new[]
    {
        v.DistToken ? "dist_token" : null, v.RegTokens > 0 ? $"reg_tokens={v.RegTokens}" : null, v.ClassToken ? null : "no class token",
        v.NoEmbedClass ? "no_embed_class" : null, v.PreNorm ? "pre_norm" : null, v.LayerScale ? "layer scale" : null,
        v.QkNorm ? "qk_norm" : null, v.QkvBias ? null : "qkv_bias=False", v.DimHead > 0 ? $"dim_head={v.DimHead}" : null,
        v.PixelNorm ? "pixel_norm" : null, v.PatchEmbedNorm ? "patch_embed.norm" : null,
        v.ConvTokenizer is { } ct ? $"conv_tokenizer (CCT: {ct.Layers} layers, {ct.Channels} channels)" : null,
        $"global_pool={VitConfig.PoolName(v.Pool)}", v.FcNorm ? "fc_norm" : null,
    }.Where(s => s is not null));

    /// <summary>The longest dotted prefix ("a.b.") all names share, or "".</summary>
    private static string CommonPrefix(IEnumerable<string> names)
    {
        string? common = null;
        foreach (var n in names)
        {
            var dirs = n.LastIndexOf('.') is var i and >= 0 ? n[..(i + 1)] : "";
            if (common is null) { common = dirs; continue; }
            int k = 0;
            while (k < common.Length && k < dirs.Length && common[k] == dirs[k]) k++;
            common = common[..(common.LastIndexOf('.', Math.Max(k - 1, 0)) + 1)];
            if (k == 0) common = "";
        }
        return common ?? "";
    }

    private static string AdviceFor(int unplaced) =>
        (unplaced > 0 ? "rename the tensors to timm's names with --name-map map.json (ordered regex → name rules, see docs/ARCHITECTURE.md); " : "") +
        "shipped maps: " + string.Join(", ", NameMap.Shipped.Select(m => $"{m.Source} ({m.Name})")) +
        "; --heads, --pool, --gelu, --img-size set what the weights cannot say";

    /// <summary>Names (and shapes) as stored, before any renaming; null when the file cannot be listed.</summary>
    private static List<(string Name, int[] Shape)>? RawNames(string path)
    {
        try
        {
            if (File.Exists(path) && SafeTensors.LooksLike(path)) return SafeTensors.ReadHeader(path).entries.Select(e => (e.Name, e.Shape)).ToList();
            if (File.Exists(path) && PyTorchPickle.LooksLike(path)) return PyTorchPickle.Read(path).Select(kv => (kv.Key, kv.Value.Shape)).ToList();
        }
        catch (VitSharpException) { }
        return null;
    }

    // The names any VitSharp ViT or Mixer can hold: every option on, two blocks (block numbers are compared as N).
    private static readonly string[] KnownNames = [.. new[]
    {
        new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 64, Depth = 1, NumHeads = 2, DistToken = true, RegTokens = 4, PreNorm = true, LayerScale = true,
            QkNorm = true, PixelNorm = true, PatchEmbedNorm = true, Pool = Pooling.Map, RepresentationSize = 8, NumClasses = 5 },
        new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 64, Depth = 1, NumHeads = 2, Pool = Pooling.Avg, FcNorm = true, ClassToken = false, NumClasses = 5 },
    }.SelectMany(c => VisionTransformer.Layout(c).Select(l => l.Item1))
        .Concat(MlpMixer.Layout(new MixerConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 64, Depth = 1, NumClasses = 5 }).Select(l => l.Item1))
        .Distinct()];

    private static bool Placeable(string name) => KnownNames.Contains(BlockZero(name));

    private static string BlockZero(string name) => System.Text.RegularExpressions.Regex.Replace(name, @"^blocks\.\d+\.", "blocks.0.");

    /// <summary>The three known names closest to <paramref name="name"/> (edit distance over dotted parts, numbers as one symbol).</summary>
    public static IReadOnlyList<string> Nearest(string name, IEnumerable<string>? candidates = null)
    {
        var digits = System.Text.RegularExpressions.Regex.Match(name, @"\d+");
        var block = digits.Success ? digits.Value : "0";
        return (candidates ?? KnownNames).Distinct()
            .Select(k => (k, d: Distance(Norm(name), Norm(k))))
            .OrderBy(x => x.d).ThenBy(x => x.k, StringComparer.Ordinal).Take(3)
            .Select(x => System.Text.RegularExpressions.Regex.Replace(x.k, @"^blocks\.0\.", $"blocks.{block}.")).ToList();

        static string Norm(string s) => System.Text.RegularExpressions.Regex.Replace(s.ToLowerInvariant(), @"\d+", "#");
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
