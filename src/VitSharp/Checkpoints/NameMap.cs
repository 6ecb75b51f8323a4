using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace VitSharp.Checkpoints;

/// <summary>
/// A name map: ordered regex → timm-name rules (the first rule whose <c>from</c> matches a tensor's name renames it;
/// <c>to</c> may use the match's groups as $1…; <c>to: null</c> drops the tensor), an optional weight rearrangement per
/// rule, config values the weights cannot state, and the patterns that recognise the layout. The maps VitSharp ships
/// (NameMaps/*.json, one per family) are data files of this form, and so is a user's <c>--name-map map.json</c>.
/// </summary>
/// <remarks>
/// File: <c>{"name", "description", "detect": [regex…], "absent": [regex…], "config": {…}, "rules": [{"from", "to",
/// "transform"}…]}</c>. A layout is recognised when every <c>detect</c> pattern matches some name and no <c>absent</c>
/// pattern does. Config keys: heads, dim_head, activation, eps, global_pool, in_chans, pos_embed ("sincos2d": a fixed
/// 2-D sin-cos table the checkpoint does not store, made for the run's image size). Transforms: <c>as_tokens</c>
/// ((D), (T, D) or (1, T, D) → (1, T, D)), <c>patch_linear_to_conv</c> (a Linear over patches flattened (p1 p2 c) →
/// the (D, C, P, P) convolution weight), <c>patch_vector_to_conv_order</c> (a per-pixel vector in (p1 p2 c) order →
/// (c p1 p2)). Mapped tensors with no elements (vit-pytorch's class token under mean pooling) are dropped. Unknown keys
/// anywhere are errors.
/// </remarks>
public sealed record NameMap
{
    public required string Name { get; init; }
    public string Description { get; init; } = "";
    public required string Source { get; init; }
    public IReadOnlyList<Regex> Detect { get; init; } = [];
    public IReadOnlyList<Regex> Absent { get; init; } = [];
    public IReadOnlyList<Rule> Rules { get; init; } = [];
    public int? Heads { get; init; }
    public int? DimHead { get; init; }
    public string? Activation { get; init; }
    public double? Eps { get; init; }
    public string? GlobalPool { get; init; }
    public int InChans { get; init; } = 3;
    public string? PosEmbed { get; init; }

    /// <summary>One rule of a name map: names matching <c>From</c> are renamed to <c>To</c> (null: dropped), and the tensor optionally reshaped by a named transform.</summary>
    public sealed record Rule(Regex From, string? To, string? Transform);

    private static readonly string[] Transforms = ["as_tokens", "patch_linear_to_conv", "patch_vector_to_conv_order"];

    /// <summary>The maps VitSharp ships, one per family it reads by a map (embedded NameMaps/*.json).</summary>
    public static IReadOnlyList<NameMap> Shipped { get; } = LoadShipped();

    private static List<NameMap> LoadShipped()
    {
        var asm = typeof(NameMap).Assembly;
        return asm.GetManifestResourceNames().Where(n => n.StartsWith("VitSharp.NameMaps.", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
            .Select(n =>
            {
                using var s = asm.GetManifestResourceStream(n)!;
                using var r = new StreamReader(s);
                return Parse(r.ReadToEnd(), "NameMaps/" + n["VitSharp.NameMaps.".Length..]);
            }).ToList();
    }

    /// <summary>A name map is a page of rules: larger files are refused before they are read.</summary>
    public const long MaxFileBytes = 1 << 20;

    public static NameMap Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "name map not found");
        if (new FileInfo(path).Length > MaxFileBytes) throw new CheckpointException(path, $"name map larger than {MaxFileBytes} bytes");
        return Parse(File.ReadAllText(path), path);
    }

    public static NameMap Parse(string json, string file)
    {
        JsonObject root;
        try { root = JsonNode.Parse(json) as JsonObject ?? throw new CheckpointException(file, "a name map must be a JSON object"); }
        catch (JsonException e) { throw new CheckpointException(file, $"invalid JSON: {e.Message}", inner: e); }
        Known(root, file, "", "name", "description", "detect", "absent", "config", "rules");
        var cfg = root["config"] as JsonObject ?? (root["config"] is null ? new JsonObject() : throw Error(file, "'config' must be an object"));
        Known(cfg, file, "config.", "heads", "dim_head", "activation", "eps", "global_pool", "in_chans", "pos_embed");
        var rules = new List<Rule>();
        if (root["rules"] is not JsonArray ra) throw Error(file, "'rules' must be an array of {\"from\", \"to\"} objects");
        for (int i = 0; i < ra.Count; i++)
        {
            var at = $"rules[{i}].";
            if (ra[i] is not JsonObject r) throw Error(file, $"'{at.TrimEnd('.')}' must be an object");
            Known(r, file, at, "from", "to", "transform");
            var from = Str(r["from"], file, at + "from") ?? throw Error(file, $"'{at}from' is missing");
            if (!r.ContainsKey("to")) throw Error(file, $"'{at}to' is missing (null drops the tensor)");
            var transform = Str(r["transform"], file, at + "transform");
            if (transform is not null && Array.IndexOf(Transforms, transform) < 0)
                throw Error(file, $"'{at}transform': '{transform}' is not one of {string.Join(", ", Transforms)}");
            rules.Add(new Rule(Pattern(from, file, at + "from"), Str(r["to"], file, at + "to"), transform));
        }
        var map = new NameMap
        {
            Name = Str(root["name"], file, "name") ?? Path.GetFileNameWithoutExtension(file),
            Description = Str(root["description"], file, "description") ?? "",
            Source = file,
            Detect = Patterns(root["detect"], file, "detect"),
            Absent = Patterns(root["absent"], file, "absent"),
            Rules = rules,
            Heads = Int(cfg["heads"], file, "config.heads"),
            DimHead = Int(cfg["dim_head"], file, "config.dim_head"),
            Activation = Str(cfg["activation"], file, "config.activation"),
            Eps = Num(cfg["eps"], file, "config.eps"),
            GlobalPool = Str(cfg["global_pool"], file, "config.global_pool"),
            InChans = Int(cfg["in_chans"], file, "config.in_chans") ?? 3,
            PosEmbed = Str(cfg["pos_embed"], file, "config.pos_embed"),
        };
        try
        {
            Models.ModelConfig.ParseActivation(map.Activation);
            Models.VitConfig.ParsePool(map.GlobalPool);
        }
        catch (VitSharpException e) { throw Error(file, e.Message); }
        if (map.Heads is <= 0 || map.DimHead is <= 0 || map.InChans <= 0) throw Error(file, "'config' heads, dim_head and in_chans must be positive");
        if (map.Eps is { } eps && !(eps > 0 && eps < 1)) throw Error(file, $"'config.eps' must be in (0, 1), not {eps}");
        if (map.PosEmbed is not (null or "sincos2d")) throw Error(file, $"'config.pos_embed': '{map.PosEmbed}' is not 'sincos2d'");
        return map;
    }

    /// <summary>Whether these names are this map's layout.</summary>
    public bool Recognises(IEnumerable<string> names)
    {
        if (Detect.Count == 0) return false;
        var list = names as IReadOnlyCollection<string> ?? names.ToList();
        return Detect.All(d => list.Any(n => Match(d, n))) && !Absent.Any(a => list.Any(n => Match(a, n)));
    }

    /// <summary>The first shipped map that recognises these names, or null.</summary>
    public static NameMap? Find(IEnumerable<string> names)
    {
        var list = names.ToList();
        return Shipped.FirstOrDefault(m => m.Recognises(list));
    }

    /// <summary>Whether some rule renames (or drops) this name.</summary>
    public bool Covers(string name) => Rules.Any(r => Match(r.From, name));

    /// <summary>A pattern's match, its time limit turned into a typed error naming the map.</summary>
    private bool Match(Regex r, string name)
    {
        try { return r.IsMatch(name); }
        catch (RegexMatchTimeoutException) { throw new CheckpointException(Source, $"name map: pattern '{r}' ran over its 1 s limit on '{name}'"); }
    }

    /// <summary>The config values this map states, as a hint (config.json's role): what the weights cannot say.</summary>
    public JsonObject Hint()
    {
        var h = new JsonObject();
        if (Heads is { } heads) h["num_heads"] = heads;
        if (DimHead is { } dh) h["dim_head"] = dh;
        if (Eps is { } eps) h["layer_norm_eps"] = eps;
        if (Activation is { } act) h["gelu"] = act;
        if (GlobalPool is { } pool) h["global_pool"] = pool;
        return h;
    }

    /// <summary>Renames (and rearranges) every tensor by the first rule that matches it; names no rule matches are kept.</summary>
    public Dictionary<string, HostArray> Apply(IReadOnlyDictionary<string, HostArray> w, string file, int? imageSize)
    {
        var o = new Dictionary<string, HostArray>();
        foreach (var (name, a) in w)
        {
            var rule = Rules.FirstOrDefault(r => Match(r.From, name));
            if (rule is null) { Add(name, a, name); continue; }
            if (rule.To is null) continue;
            var target = rule.From.Replace(name, rule.To);
            Add(target, Rearrange(a, rule.Transform, name), name);
        }
        if (PosEmbed == "sincos2d" && !o.ContainsKey("pos_embed")) o["pos_embed"] = SinCos(o, file, imageSize);
        return o;

        void Add(string target, HostArray a, string source)
        {
            if (a.Data.Length == 0) return;
            if (!o.TryAdd(target, a))
                throw new CheckpointException(file, $"name map '{Name}' maps a second tensor to '{target}'", source);
        }

        HostArray Rearrange(HostArray a, string? transform, string name)
        {
            switch (transform)
            {
                case null: return a;
                case "as_tokens":
                    return a.Shape.Length switch
                    {
                        1 => a.Reshape(1, 1, a.Shape[0]),
                        2 => a.Reshape(1, a.Shape[0], a.Shape[1]),
                        3 when a.Shape[0] == 1 => a,
                        _ => throw new CheckpointException(file, $"'as_tokens' needs (D), (T, D) or (1, T, D), not {a}", name),
                    };
                case "patch_linear_to_conv":
                {
                    if (a.Shape.Length != 2) throw new CheckpointException(file, $"'patch_linear_to_conv' needs a (D, P·P·C) weight, not {a}", name);
                    int d = a.Shape[0], p = PatchOf(a.Shape[1], name), c = InChans;
                    var r = new float[a.Data.Length];
                    for (int o = 0; o < d; o++)
                        for (int ch = 0; ch < c; ch++)
                            for (int y = 0; y < p; y++)
                                for (int x = 0; x < p; x++)
                                    r[((o * c + ch) * p + y) * p + x] = a.Data[o * a.Shape[1] + (y * p + x) * c + ch];
                    return new HostArray([d, c, p, p], r);
                }
                default: // patch_vector_to_conv_order
                {
                    if (a.Shape.Length != 1) throw new CheckpointException(file, $"'patch_vector_to_conv_order' needs a (P·P·C) vector, not {a}", name);
                    int p = PatchOf(a.Shape[0], name), c = InChans;
                    var r = new float[a.Data.Length];
                    for (int ch = 0; ch < c; ch++)
                        for (int y = 0; y < p; y++)
                            for (int x = 0; x < p; x++)
                                r[(ch * p + y) * p + x] = a.Data[(y * p + x) * c + ch];
                    return new HostArray([r.Length], r);
                }
            }
        }

        int PatchOf(int k, string name)
        {
            int p = (int)Math.Round(Math.Sqrt(k / (double)InChans));
            if (p <= 0 || p * p * InChans != k)
                throw new CheckpointException(file, $"{k} values per patch are not P·P·{InChans} (set config.in_chans in the name map)", name);
            return p;
        }
    }

    /// <summary>vit-pytorch's posemb_sincos_2d (temperature 10000): per patch (row-major grid), [sin x·ω, cos x·ω, sin y·ω, cos y·ω].</summary>
    private HostArray SinCos(Dictionary<string, HostArray> o, string file, int? imageSize)
    {
        if (!o.TryGetValue("patch_embed.proj.weight", out var pw) || pw.Shape.Length != 4)
            throw new CheckpointException(file, $"name map '{Name}': a sin-cos position table needs the patch embedding 'patch_embed.proj.weight'");
        if (imageSize is not int size)
            throw new CheckpointException(file, $"name map '{Name}': the checkpoint stores no position embedding, so it does not say its image size: pass --img-size (LoadOptions.ImageSize)");
        int d = pw.Shape[0], p = pw.Shape[2];
        if (d % 4 != 0) throw new CheckpointException(file, $"a sin-cos position table needs a width divisible by 4, not {d}");
        if (size <= 0 || size % p != 0) throw new CheckpointException(file, $"image size {size} is not a positive multiple of the patch size {p}");
        int g = size / p, q = d / 4;
        var pe = new float[g * g * d];
        for (int y = 0; y < g; y++)
            for (int x = 0; x < g; x++)
            {
                int row = (y * g + x) * d;
                for (int i = 0; i < q; i++)
                {
                    // Computed as PyTorch does it in float32: ω = 1 / 10000^(i/(q−1)), then position·ω.
                    float omega = 1f / MathF.Pow(10000f, q == 1 ? 0f : i / (float)(q - 1));
                    float xo = x * omega, yo = y * omega;
                    pe[row + i] = MathF.Sin(xo);
                    pe[row + q + i] = MathF.Cos(xo);
                    pe[row + 2 * q + i] = MathF.Sin(yo);
                    pe[row + 3 * q + i] = MathF.Cos(yo);
                }
            }
        return new HostArray([1, g * g, d], pe);
    }

    private static CheckpointException Error(string file, string message) => new(file, "name map: " + message);

    private static void Known(JsonObject o, string file, string at, params string[] keys)
    {
        foreach (var (k, _) in o)
            if (Array.IndexOf(keys, k) < 0) throw Error(file, $"unknown key '{at}{k}' (known: {string.Join(", ", keys)})");
    }

    private static Regex Pattern(string s, string file, string at)
    {
        try { return new Regex(s, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
        catch (ArgumentException e) { throw Error(file, $"'{at}' is not a valid regular expression: {e.Message}"); }
    }

    private static IReadOnlyList<Regex> Patterns(JsonNode? n, string file, string at) => n switch
    {
        null => [],
        JsonArray a => a.Select((x, i) => Pattern(Str(x, file, $"{at}[{i}]") ?? throw Error(file, $"'{at}[{i}]' is null"), file, $"{at}[{i}]")).ToList(),
        _ => throw Error(file, $"'{at}' must be an array of regular expressions"),
    };

    private static string? Str(JsonNode? n, string file, string at) => n switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw Error(file, $"'{at}' must be a string, not {n.ToJsonString()}"),
    };

    private static int? Int(JsonNode? n, string file, string at) => n switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) => i,
        _ => throw Error(file, $"'{at}' must be an integer, not {n.ToJsonString()}"),
    };

    private static double? Num(JsonNode? n, string file, string at) => n switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.GetValue<double>(),
        _ => throw Error(file, $"'{at}' must be a number, not {n.ToJsonString()}"),
    };
}
