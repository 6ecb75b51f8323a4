using VitSharp.Models;

namespace VitSharp.Checkpoints;

/// <summary>
/// Google's Flax naming (vision_transformer, big_vision's `params/` prefix, `opt/target/` training checkpoints) ⇄
/// timm names. The one place that knows Google's layouts: HWIO conv kernels, in×out dense kernels, per-head q/k/v.
/// Both directions walk the same tables (<see cref="Rule"/>), so reading and writing cannot drift apart.
/// </summary>
public static class GoogleNames
{
    /// <summary>How a Google module maps to timm parameters.</summary>
    public enum Kind
    {
        /// <summary>kernel (H, W, in, out) + bias ⇄ weight (out, in, H, W) + bias.</summary>
        Conv,
        /// <summary>kernel (in, out) + bias ⇄ weight (out, in) + bias.</summary>
        Dense,
        /// <summary>scale + bias ⇄ weight + bias.</summary>
        Norm,
        /// <summary>one array under the same layout.</summary>
        Param,
        /// <summary>query/key/value kernels (D, heads, head_dim) + biases (heads, head_dim) ⇄ fused qkv (3·inner, D).</summary>
        Qkv,
        /// <summary>out kernel (heads, head_dim, D) + bias ⇄ proj weight (D, inner) + bias.</summary>
        Out,
    }

    /// <summary>One module: its Google name (relative to the block for block rules), its timm name, how the arrays map,
    /// and whether a checkpoint may leave it out. <see cref="Kind.Qkv"/> stacks <c>Parts</c> (default query, key, value).</summary>
    public sealed record Rule(string Google, string Timm, Kind Kind, bool Optional = false, string[]? Parts = null);

    /// <summary>Google's ViT (vision_transformer) outside the blocks. big_vision keeps the position table at the top level.</summary>
    private static Rule[] VitTop(bool bigVision) =>
    [
        new("embedding", "patch_embed.proj", Kind.Conv),
        new("cls", "cls_token", Kind.Param, Optional: true),
        new(bigVision ? "pos_embedding" : "Transformer/posembed_input/pos_embedding", "pos_embed", Kind.Param),
        new("Transformer/encoder_norm", "norm", Kind.Norm),
        new("pre_logits", "pre_logits.fc", Kind.Dense, Optional: true),
        new("head", "head", Kind.Dense, Optional: true),
    ];

    /// <summary>One encoder block, "Transformer/encoderblock_{i}/" ⇄ "blocks.{i}." (big_vision numbers the sub-modules differently).</summary>
    private static Rule[] VitBlock(bool bigVision)
    {
        var (ln1, attn, ln2, mlp) = bigVision
            ? ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")
            : ("LayerNorm_0", "MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3");
        return
        [
            new(ln1, "norm1", Kind.Norm),
            new(attn, "attn.qkv", Kind.Qkv),
            new(attn + "/out", "attn.proj", Kind.Out),
            new(ln2, "norm2", Kind.Norm),
            new(mlp + "/Dense_0", "mlp.fc1", Kind.Dense),
            new(mlp + "/Dense_1", "mlp.fc2", Kind.Dense),
        ];
    }

    private static readonly Rule[] MixerTop =
    [
        new("stem", "stem.proj", Kind.Conv),
        new("pre_head_layer_norm", "norm", Kind.Norm),
        new("head", "head", Kind.Dense, Optional: true),
    ];

    /// <summary>One Mixer block, "MixerBlock_{i}/" ⇄ "blocks.{i}.".</summary>
    private static readonly Rule[] MixerBlock =
    [
        new("LayerNorm_0", "norm1", Kind.Norm),
        new("token_mixing/Dense_0", "mlp_tokens.fc1", Kind.Dense),
        new("token_mixing/Dense_1", "mlp_tokens.fc2", Kind.Dense),
        new("LayerNorm_1", "norm2", Kind.Norm),
        new("channel_mixing/Dense_0", "mlp_channels.fc1", Kind.Dense),
        new("channel_mixing/Dense_1", "mlp_channels.fc2", Kind.Dense),
    ];

    private static string ViTBlockName(int i) => $"Transformer/encoderblock_{i}";
    private static string MixerBlockName(int i) => $"MixerBlock_{i}";

    public static bool IsGoogle(IReadOnlyDictionary<string, HostArray> w) =>
        Prefix(w) is not null;

    private static string? Prefix(IReadOnlyDictionary<string, HostArray> w)
    {
        foreach (var p in new[] { "", "params/", "opt/target/" })
            if (w.ContainsKey(p + "embedding/kernel") || w.ContainsKey(p + "stem/kernel")) return p;
        return null;
    }

    public static Dictionary<string, HostArray> ToTimm(IReadOnlyDictionary<string, HostArray> w, string file) => ToTimm(w, file, strict: false);

    /// <summary><see cref="ToTimm(IReadOnlyDictionary{string, HostArray}, string)"/>; <paramref name="strict"/>: an array
    /// no rule reads is refused, naming it (a two-tower npz's image tower, where a leftover means a layout we misread),
    /// and every dense and attention bias is required;
    /// <paramref name="shown"/> goes before the names errors show (the <c>img/</c> a caller removed).</summary>
    public static Dictionary<string, HostArray> ToTimm(IReadOnlyDictionary<string, HostArray> w, string file, bool strict, string shown = "")
    {
        var prefix = Prefix(w) ?? throw new CheckpointException(file, $"no '{shown}embedding/kernel' or '{shown}stem/kernel': not a Google ViT/Mixer checkpoint");
        var r = new Reader(Unscan(w, prefix + "Transformer/encoderblock/", file), prefix, file, shown, strict);
        if (r.Has("stem/kernel"))
        {
            foreach (var rule in MixerTop) r.Apply(rule, "", "");
            for (int i = 0; r.Has($"{MixerBlockName(i)}/{MixerBlock[0].Google}/scale"); i++)
                foreach (var rule in MixerBlock) r.Apply(rule, MixerBlockName(i) + "/", $"blocks.{i}.");
        }
        else
        {
            bool bigVision = r.Has("pos_embedding");
            var block = VitBlock(bigVision);
            foreach (var rule in VitTop(bigVision)) r.Apply(rule, "", "");
            for (int i = 0; r.Has($"{ViTBlockName(i)}/{block[0].Google}/scale"); i++)
                foreach (var rule in block) r.Apply(rule, ViTBlockName(i) + "/", $"blocks.{i}.");
            if (r.Has(MapHeadName + "/probe")) MapHead(r, block);
        }
        if (strict) r.RefuseUnused("the image tower");
        return r.Out;
    }

    private const string MapHeadName = "MAPHead_0";

    /// <summary>big_vision's MAPHead (vit.py): a learned probe (1, 1, D) attends over the tokens (query from the probe,
    /// key and value from the tokens, the model's head count), then x + MlpBlock(LayerNorm(x)) — timm's attn_pool, whose
    /// q is the query and kv the key and value stacked.</summary>
    private static readonly Rule[] MapHeadRules =
    [
        new(MapHeadName + "/probe", "attn_pool.latent", Kind.Param),
        new(MapHeadName + "/MultiHeadDotProductAttention_0", "attn_pool.q", Kind.Qkv, Parts: ["query"]),
        new(MapHeadName + "/MultiHeadDotProductAttention_0", "attn_pool.kv", Kind.Qkv, Parts: ["key", "value"]),
        new(MapHeadName + "/MultiHeadDotProductAttention_0/out", "attn_pool.proj", Kind.Out),
        new(MapHeadName + "/LayerNorm_0", "attn_pool.norm", Kind.Norm),
        new(MapHeadName + "/MlpBlock_0/Dense_0", "attn_pool.mlp.fc1", Kind.Dense),
        new(MapHeadName + "/MlpBlock_0/Dense_1", "attn_pool.mlp.fc2", Kind.Dense),
    ];

    private static void MapHead(Reader r, Rule[] block)
    {
        var probeName = MapHeadName + "/probe";
        var probe = r.Get(probeName);
        if (probe.Shape.Length != 3 || probe.Shape[0] != 1 || probe.Shape[1] != 1)
            throw new CheckpointException(r.File, $"expected shape (1, 1, width), found {probe}", r.Prefix + probeName);
        // timm's attn_pool runs with the blocks' head count: a MAP head with another one would compute something else.
        var q = MapHeadName + "/MultiHeadDotProductAttention_0/query/kernel";
        var q0 = $"{ViTBlockName(0)}/{block[1].Google}/query/kernel";
        if (r.Has(q0) && r.Get(q).Shape is { Length: 3 } mq && r.Get(q0).Shape is { Length: 3 } bq && mq[1] != bq[1])
            throw new CheckpointException(r.File, $"the MAP head has {mq[1]} heads but the blocks {bq[1]}: VitSharp's attention pool uses the blocks' head count", r.Prefix + q);
        foreach (var rule in MapHeadRules) r.Apply(rule, "", "");
    }

    /// <summary>A text tower's Google names (relative to its <c>txt/</c>) outside the blocks: big_vision's
    /// text_transformer.py and vision_transformer's models_lit.py TextTransformer name them alike; the blocks are their
    /// Encoder's (big_vision's or vision_transformer's numbering).</summary>
    private static readonly Rule[] TextTop =
    [
        new("Embed_0/embedding", "token_embedding", Kind.Param),
        new("pos_embedding", "pos_embed", Kind.Param),
        new("Encoder_0/encoder_norm", "norm", Kind.Norm),
        new("head", "head", Kind.Dense, Optional: true),
    ];

    /// <summary>
    /// A big_vision / LiT text tower (the arrays under <c>txt/</c>, that prefix removed) → <see cref="TextTransformer"/>'s
    /// names: token_embedding (V, D), pos_embed (T, D), blocks.{i}.*, norm, head (an identity of width D where the tower has
    /// none, as transformers' conversion of the i18n SigLIP does). Every array must be read by a rule (else a
    /// <see cref="CheckpointException"/> naming it, with <paramref name="prefix"/> and <paramref name="file"/>); a
    /// MAP-pooled text tower is refused. Returns the weights and the head count the query kernels state.
    /// </summary>
    public static (Dictionary<string, HostArray> Weights, int Heads) TextToTimm(IReadOnlyDictionary<string, HostArray> w, string prefix, string file)
    {
        var r = new Reader(Unscan(w, "Encoder_0/encoderblock/", file), "", file, prefix, strict: true);
        if (!r.Has("Embed_0/embedding"))
            throw new CheckpointException(file, $"no '{prefix}Embed_0/embedding': the text tower is not big_vision's text_transformer (LiT's BERT text towers are not supported)");
        if (r.Has(MapHeadName + "/probe")) throw new CheckpointException(file, "a text tower with MAP pooling is not supported (VitSharp's text tower pools the last token)", prefix + MapHeadName + "/probe");
        string blockName(int i) => $"Encoder_0/encoderblock_{i}";
        bool bigVision = !r.Has(blockName(0) + "/MultiHeadDotProductAttention_1/query/kernel");
        var block = VitBlock(bigVision);
        foreach (var rule in TextTop) r.Apply(rule, "", "");
        int depth = 0;
        for (; r.Has($"{blockName(depth)}/{block[0].Google}/scale"); depth++)
            foreach (var rule in block) r.Apply(rule, blockName(depth) + "/", $"blocks.{depth}.");
        var o = r.Out;
        var pos = Expect(o["pos_embed"], 3, file, prefix + "pos_embedding");
        if (pos.Shape[0] != 1) throw new CheckpointException(file, $"expected shape (1, positions, width), found {pos}", prefix + "pos_embedding");
        o["pos_embed"] = pos.Reshape(pos.Shape[1], pos.Shape[2]);
        // big_vision's text_transformer.load: some older checkpoints also hold a position table in the Encoder, added twice.
        if (r.Has("Encoder_0/pos_embedding"))
        {
            var extra = r.Get("Encoder_0/pos_embedding");
            if (extra.Count != o["pos_embed"].Count) throw new CheckpointException(file, $"has shape {extra} but the text position table {pos}", prefix + "Encoder_0/pos_embedding");
            var sum = o["pos_embed"].Data.ToArray();
            System.Numerics.Tensors.TensorPrimitives.Add(sum, extra.Data, sum);
            o["pos_embed"] = new HostArray(o["pos_embed"].Shape, sum);
        }
        var tok = Expect(o["token_embedding"], 2, file, prefix + "Embed_0/embedding");
        if (!o.ContainsKey("head.weight"))
        {
            int d = tok.Shape[1];
            var eye = new float[d * d];
            for (int i = 0; i < d; i++) eye[i * d + i] = 1;
            o["head.weight"] = new HostArray([d, d], eye);
            o["head.bias"] = new HostArray([d], new float[d]);
        }
        else if (!o.ContainsKey("head.bias")) o["head.bias"] = new HostArray([o["head.weight"].Shape[0]], new float[o["head.weight"].Shape[0]]);
        r.RefuseUnused("the text tower");
        int heads = depth == 0 ? 1 : Expect(r.Get($"{blockName(0)}/{block[1].Google}/query/kernel"), 3, file, $"{prefix}{blockName(0)}/{block[1].Google}/query/kernel").Shape[1];
        return (o, heads);
    }

    /// <summary>
    /// big_vision's scanned encoders (<c>scan=True</c>: the so400m and 512-pixel SigLIPs) keep one array per parameter
    /// under <c>…/encoderblock/</c>, its leading axis the block: split into <c>encoderblock_{i}/</c> as transformers'
    /// conversion does. A dictionary without <paramref name="scanned"/> names is returned as it is.
    /// </summary>
    public static IReadOnlyDictionary<string, HostArray> Unscan(IReadOnlyDictionary<string, HostArray> w, string scanned, string file)
    {
        if (!w.Keys.Any(k => k.StartsWith(scanned, StringComparison.Ordinal))) return w;
        var o = new Dictionary<string, HostArray>();
        int depth = -1;
        foreach (var (k, a) in w)
        {
            if (!k.StartsWith(scanned, StringComparison.Ordinal)) { o[k] = a; continue; }
            if (a.Shape.Length < 2) throw new CheckpointException(file, $"a scanned encoder's array needs a leading block axis, found shape {a}", k);
            if (depth < 0) depth = a.Shape[0];
            else if (a.Shape[0] != depth) throw new CheckpointException(file, $"has {a.Shape[0]} blocks on its leading axis, other arrays of the scanned encoder {depth}", k);
            int stride = (int)(a.Count / depth);
            var data = a.Data;
            var rest = scanned[..^1] + "_";
            for (int i = 0; i < depth; i++)
                o[$"{rest}{i}/{k[scanned.Length..]}"] = new HostArray(a.Shape[1..], data[(i * stride)..((i + 1) * stride)]);
        }
        return o;
    }

    /// <summary>Google → timm by the <see cref="Rule"/> tables over one dictionary: the arrays each rule reads, with
    /// Google's layouts undone, and which names were read.</summary>
    /// <remarks><paramref name="shown"/> goes before every name an error shows (the tower's <c>img/</c> or <c>txt/</c>
    /// the caller removed). <paramref name="strict"/>: the biases of dense layers and attention are required (big_vision's flax
    /// modules always have them), so a missing one is named as the file has it.</remarks>
    private sealed class Reader(IReadOnlyDictionary<string, HostArray> w, string prefix, string file, string shown = "", bool strict = false)
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);
        public Dictionary<string, HostArray> Out { get; } = new();
        public string Prefix => shown + prefix;
        public string File => file;

        public bool Has(string name) => w.ContainsKey(prefix + name);

        public HostArray Get(string name)
        {
            if (!w.TryGetValue(prefix + name, out var a)) throw new CheckpointException(file, "missing from the checkpoint", Prefix + name);
            _used.Add(prefix + name);
            return a;
        }

        private HostArray Get(string name, int rank) => Expect(Get(name), rank, file, Prefix + name);

        public void RefuseUnused(string what)
        {
            foreach (var k in w.Keys.Where(k => !_used.Contains(k)).Order(StringComparer.Ordinal))
                throw new CheckpointException(file, $"no part of {what} VitSharp reads uses this array", shown + k);
        }

        public void Apply(Rule r, string g, string t)
        {
            string src = g + r.Google, dst = t + r.Timm;
            var o = Out;
            switch (r.Kind)
            {
                case Kind.Param:
                    if (r.Optional && !Has(src)) return;
                    o[dst] = Get(src);
                    break;
                case Kind.Norm:
                    o[dst + ".weight"] = Get(src + "/scale");
                    o[dst + ".bias"] = Get(src + "/bias");
                    break;
                case Kind.Conv:
                    o[dst + ".weight"] = Get(src + "/kernel", 4).Permute(3, 2, 0, 1); // HWIO → OIHW
                    o[dst + ".bias"] = Get(src + "/bias");
                    break;
                case Kind.Dense:
                    if (r.Optional && !Has(src + "/kernel")) return;
                    o[dst + ".weight"] = Get(src + "/kernel", 2).Transpose2D();
                    if (strict || Has(src + "/bias")) o[dst + ".bias"] = Get(src + "/bias");
                    break;
                case Kind.Qkv:
                    var qkvW = new List<HostArray>();
                    var qkvB = new List<HostArray>();
                    var parts = r.Parts ?? QkvParts;
                    foreach (var part in parts)
                    {
                        var k = Get($"{src}/{part}/kernel", 3); // (D, H, hd)
                        qkvW.Add(k.Reshape(k.Shape[0], k.Shape[1] * k.Shape[2]).Transpose2D());
                        if (strict || Has($"{src}/{part}/bias"))
                        {
                            var bias = Get($"{src}/{part}/bias");
                            if (bias.Count != k.Shape[1] * k.Shape[2])
                                throw new CheckpointException(file, $"has shape {bias} but its kernel {k} has {k.Shape[1] * k.Shape[2]} outputs", $"{Prefix}{src}/{part}/bias");
                            qkvB.Add(bias.Reshape((int)bias.Count));
                        }
                    }
                    o[dst + ".weight"] = HostArray.Concat0([.. qkvW]);
                    if (qkvB.Count == parts.Length) o[dst + ".bias"] = HostArray.Concat0([.. qkvB]);
                    break;
                case Kind.Out:
                    var outK = Get(src + "/kernel", 3); // (H, hd, D)
                    o[dst + ".weight"] = outK.Reshape(outK.Shape[0] * outK.Shape[1], outK.Shape[2]).Transpose2D();
                    o[dst + ".bias"] = Get(src + "/bias");
                    break;
            }
        }
    }

    private static readonly string[] QkvParts = ["query", "key", "value"];

    /// <summary>The features of a model that a Google .npz cannot hold (its readers would compute something else), by
    /// name; empty when it can be written.</summary>
    public static List<string> Unexpressible(ModelConfig config)
    {
        var why = new List<string>();
        if (config.Gelu is not (Backends.Activation.Gelu or Backends.Activation.GeluTanh))
            why.Add($"the {ModelConfig.ActivationName(config.Gelu)} MLP activation (Google's models and the npz readers run GELU)");
        if (config is not VitConfig v) return why;
        if (v.DistToken) why.Add("a distillation token (DeiT)");
        if (v.RegTokens > 0) why.Add("register tokens");
        if (v.LayerScale) why.Add("layer scale (ls1/ls2 gammas)");
        if (v.QkNorm) why.Add("qk_norm");
        if (v.PreNorm) why.Add("a pre-norm (norm_pre, CLIP's ln_pre)");
        if (v.PixelNorm) why.Add("vit-pytorch's pixel LayerNorm before the patch projection");
        if (v.PatchEmbedNorm) why.Add("a LayerNorm after the patch projection");
        if (v.ConvTokenizer is not null) why.Add("CCT's convolutional tokenizer (no patch projection)");
        if (v.Pool == Pooling.Map) why.Add("an attention-pool (MAP) head");
        if (v.Pool == Pooling.Max) why.Add("max pooling");
        if (v.Pool == Pooling.Seq) why.Add("CCT's sequence pooling (attention_pool)");
        if (v.FcNorm) why.Add("timm's fc_norm after average pooling (Google's gap normalises before pooling)");
        else if (v.Pool == Pooling.Avg && v.ClassToken) why.Add("average pooling beside a class token (an npz with a class token reads as token pooling)");
        return why;
    }

    /// <summary>
    /// The inverse of <see cref="ToTimm(IReadOnlyDictionary{string, HostArray}, string)"/>: a model's timm-named weights in Google vision_transformer's layout (no
    /// prefix, as that repository's checkpoints), every Dense with a bias (zeros where timm's has none, the same
    /// function). Refused with a <see cref="ConversionException"/> naming the feature when the npz cannot express it.
    /// </summary>
    public static Dictionary<string, HostArray> FromTimm(IReadOnlyDictionary<string, HostArray> w, ModelConfig config, string file)
    {
        var missing = Unexpressible(config);
        if (missing.Count > 0) throw new ConversionException(file, "npz", missing);
        HostArray Get(string name) => w.TryGetValue(name, out var a) ? a : throw new CheckpointException(file, "missing from the model's weights", name);
        HostArray BiasOr(string name, int n) => w.TryGetValue(name, out var a) ? a : new HostArray([n], new float[n]);
        int heads = config is VitConfig vc ? vc.NumHeads : 0, headDim = config is VitConfig vh ? vh.HeadDim : 0;
        var o = new Dictionary<string, HostArray>();

        void Apply(Rule r, string g, string t)
        {
            string dst = g + r.Google, src = t + r.Timm;
            switch (r.Kind)
            {
                case Kind.Param:
                    if (r.Optional && !w.ContainsKey(src)) return;
                    o[dst] = Get(src);
                    break;
                case Kind.Norm:
                    o[dst + "/scale"] = Get(src + ".weight");
                    o[dst + "/bias"] = Get(src + ".bias");
                    break;
                case Kind.Conv:
                    var cw = Get(src + ".weight");
                    o[dst + "/kernel"] = cw.Permute(2, 3, 1, 0); // OIHW → HWIO
                    o[dst + "/bias"] = BiasOr(src + ".bias", cw.Shape[0]);
                    break;
                case Kind.Dense:
                    if (r.Optional && !w.ContainsKey(src + ".weight")) return;
                    var dw = Get(src + ".weight");
                    o[dst + "/kernel"] = dw.Transpose2D();
                    o[dst + "/bias"] = BiasOr(src + ".bias", dw.Shape[0]);
                    break;
                case Kind.Qkv:
                    var qkv = Get(src + ".weight"); // (3·inner, D)
                    int inner = qkv.Shape[0] / 3, d = qkv.Shape[1];
                    var bias = BiasOr(src + ".bias", 3 * inner);
                    for (int k = 0; k < 3; k++)
                    {
                        var part = new HostArray([inner, d], qkv.Data[(k * inner * d)..((k + 1) * inner * d)]);
                        o[$"{dst}/{QkvParts[k]}/kernel"] = part.Transpose2D().Reshape(d, heads, headDim);
                        o[$"{dst}/{QkvParts[k]}/bias"] = new HostArray([heads, headDim], bias.Data[(k * inner)..((k + 1) * inner)]);
                    }
                    break;
                case Kind.Out:
                    var pw = Get(src + ".weight"); // (D, inner)
                    o[dst + "/kernel"] = pw.Transpose2D().Reshape(heads, headDim, pw.Shape[0]);
                    o[dst + "/bias"] = BiasOr(src + ".bias", pw.Shape[0]);
                    break;
            }
        }

        if (config is MixerConfig)
        {
            foreach (var r in MixerTop) Apply(r, "", "");
            for (int i = 0; i < config.Depth; i++)
                foreach (var r in MixerBlock) Apply(r, MixerBlockName(i) + "/", $"blocks.{i}.");
            return o;
        }
        foreach (var r in VitTop(bigVision: false)) Apply(r, "", "");
        var block = VitBlock(bigVision: false);
        for (int i = 0; i < config.Depth; i++)
            foreach (var r in block) Apply(r, ViTBlockName(i) + "/", $"blocks.{i}.");
        return o;
    }

    /// <summary>The number of heads Google's per-head q kernel (D, H, hd) states, if present.</summary>
    public static int? Heads(IReadOnlyDictionary<string, HostArray> w)
    {
        var prefix = Prefix(w);
        if (prefix is null) return null;
        foreach (var attn in new[] { "MultiHeadDotProductAttention_1", "MultiHeadDotProductAttention_0" })
            if (w.TryGetValue($"{prefix}Transformer/encoderblock_0/{attn}/query/kernel", out var q) && q.Shape.Length == 3)
                return q.Shape[1];
            else if (w.TryGetValue($"{prefix}Transformer/encoderblock/{attn}/query/kernel", out var scanned) && scanned.Shape.Length == 4)
                return scanned.Shape[2]; // a scanned encoder: (blocks, D, H, hd)
        return null;
    }

    private static HostArray Expect(HostArray a, int rank, string file, string name) =>
        a.Shape.Length == rank ? a : throw new CheckpointException(file, $"expected a rank-{rank} array, found shape {a}", name);
}
