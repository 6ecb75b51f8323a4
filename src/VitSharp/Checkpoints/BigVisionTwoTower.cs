using System.Text.Json.Nodes;

namespace VitSharp.Checkpoints;

/// <summary>
/// big_vision's two-tower .npz (proj/image_text/two_towers.py: SigLIP's released webli_*.npz) and the LiT models of
/// vision_transformer (models_lit.py) with a text_transformer text tower: the image tower under <c>img/</c>, the text
/// tower under <c>txt/</c>, the temperature <c>t</c> (1,) and, for SigLIP, the bias <c>b</c> (1,) at the top level,
/// all optionally under <c>params/</c>. The arrays carry no config: widths, depth, patch, image size, heads (the
/// per-head query kernels), vocabulary and text length come from their shapes; what they cannot say (the tokenizer)
/// the caller gives. docs/ZEROSHOT.md, "big_vision .npz (SigLIP, LiT)".
/// </summary>
public static class BigVisionTwoTower
{
    /// <summary>The prefix ("params/" or "") of a two-tower archive's <c>img/</c> and <c>txt/</c> arrays, or null when
    /// <paramref name="names"/> have neither.</summary>
    public static string? Prefix(IEnumerable<string> names)
    {
        foreach (var n in names)
            foreach (var p in new[] { "params/", "" })
                if (n.StartsWith(p + "img/", StringComparison.Ordinal) || n.StartsWith(p + "txt/", StringComparison.Ordinal)) return p;
        return null;
    }

    /// <summary>Whether <paramref name="path"/> is an .npz file whose arrays are a two-tower model's (<c>img/</c> or
    /// <c>txt/</c>); false for anything else, an unreadable archive included.</summary>
    public static bool IsTwoTower(string path)
    {
        if (!File.Exists(path) || !Npz.LooksLike(path)) return false;
        try { return Prefix(Npz.Names(path)) is not null; }
        catch (CheckpointException) { return false; }
    }

    /// <summary>What a two-tower archive holds at the top level besides its towers.</summary>
    private static bool Known(string name, string prefix) =>
        name.StartsWith(prefix + "img/", StringComparison.Ordinal) || name.StartsWith(prefix + "txt/", StringComparison.Ordinal)
        || name == prefix + "t" || name == prefix + "b";

    /// <summary>
    /// One tower's arrays (<paramref name="tower"/> "img" or "txt"), their names relative to it, the other arrays
    /// skipped unread; <paramref name="prefix"/> is where the towers are ("params/" or ""). A name no part of a
    /// two-tower model has is refused before anything is inflated; a missing tower is a <see cref="CheckpointException"/>
    /// naming it.
    /// </summary>
    public static Dictionary<string, HostArray> ReadTower(string path, string tower, long? maxTotalBytes, out string prefix)
    {
        var names = Npz.Names(path);
        var p = prefix = Prefix(names) ?? throw new CheckpointException(path, "no 'img/' or 'txt/' arrays: not a big_vision two-tower .npz");
        var unknown = names.FirstOrDefault(n => !Known(n, p));
        if (unknown is not null)
            throw new CheckpointException(path, $"no part of a big_vision two-tower model (its {p}img/, {p}txt/, {p}t, {p}b) uses this array; refused before inflating it", unknown);
        string head = p + tower + "/";
        if (!names.Any(n => n.StartsWith(head, StringComparison.Ordinal)))
            throw new CheckpointException(path, $"no '{head}' arrays: the two-tower .npz has no {(tower == "img" ? "image" : "text")} tower");
        var raw = Npz.Read(path, n => n.StartsWith(head, StringComparison.Ordinal), maxTotalBytes);
        return raw.ToDictionary(kv => kv.Key[head.Length..], kv => kv.Value, StringComparer.Ordinal);
    }

    /// <summary>The temperature <c>t</c> (a log: logits are exp(t)·cosine) and SigLIP's bias <c>b</c> (null for LiT,
    /// whose scores are a softmax), each one finite value.</summary>
    public static (float T, float? B) ReadScalars(string path, string prefix)
    {
        var s = Npz.Read(path, n => n == prefix + "t" || n == prefix + "b");
        float? One(string name, bool required)
        {
            if (!s.TryGetValue(prefix + name, out var a))
                return required ? throw new CheckpointException(path, "missing from the checkpoint (the two-tower temperature)", prefix + name) : null;
            if (a.Count != 1) throw new CheckpointException(path, $"expected one value, found shape {a}", prefix + name);
            if (!float.IsFinite(a.Data[0])) throw new CheckpointException(path, $"is {a.Data[0]}", prefix + name);
            return a.Data[0];
        }
        return (One("t", true)!.Value, One("b", false));
    }

    /// <summary>big_vision and vision_transformer run flax's nn.gelu, the tanh approximation, and flax's LayerNorm eps
    /// 1e-6: the image tower's config hint.</summary>
    internal static JsonObject ImageHint() => new() { ["gelu"] = "tanh", ["layer_norm_eps"] = 1e-6 };
}
