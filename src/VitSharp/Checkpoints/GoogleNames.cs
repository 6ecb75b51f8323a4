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
    /// and whether a checkpoint may leave it out.</summary>
    public sealed record Rule(string Google, string Timm, Kind Kind, bool Optional = false);

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

    public static Dictionary<string, HostArray> ToTimm(IReadOnlyDictionary<string, HostArray> w, string file)
    {
        var prefix = Prefix(w) ?? throw new CheckpointException(file, "no 'embedding/kernel' or 'stem/kernel': not a Google ViT/Mixer checkpoint");
        HostArray Get(string name) => w.TryGetValue(prefix + name, out var a) ? a
            : throw new CheckpointException(file, "missing from the checkpoint", prefix + name);
        bool Has(string name) => w.ContainsKey(prefix + name);
        var o = new Dictionary<string, HostArray>();

        void Apply(Rule r, string g, string t)
        {
            string src = g + r.Google, dst = t + r.Timm;
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
                    o[dst + ".weight"] = Expect(Get(src + "/kernel"), 4, file, prefix + src + "/kernel").Permute(3, 2, 0, 1); // HWIO → OIHW
                    o[dst + ".bias"] = Get(src + "/bias");
                    break;
                case Kind.Dense:
                    if (r.Optional && !Has(src + "/kernel")) return;
                    o[dst + ".weight"] = Expect(Get(src + "/kernel"), 2, file, prefix + src + "/kernel").Transpose2D();
                    if (Has(src + "/bias")) o[dst + ".bias"] = Get(src + "/bias");
                    break;
                case Kind.Qkv:
                    var qkvW = new List<HostArray>();
                    var qkvB = new List<HostArray>();
                    foreach (var part in QkvParts)
                    {
                        var k = Expect(Get($"{src}/{part}/kernel"), 3, file, $"{prefix}{src}/{part}/kernel"); // (D, H, hd)
                        qkvW.Add(k.Reshape(k.Shape[0], k.Shape[1] * k.Shape[2]).Transpose2D());
                        if (Has($"{src}/{part}/bias"))
                        {
                            var bias = Get($"{src}/{part}/bias");
                            qkvB.Add(bias.Reshape((int)bias.Count));
                        }
                    }
                    o[dst + ".weight"] = HostArray.Concat0([.. qkvW]);
                    if (qkvB.Count == 3) o[dst + ".bias"] = HostArray.Concat0([.. qkvB]);
                    break;
                case Kind.Out:
                    var outK = Expect(Get(src + "/kernel"), 3, file, prefix + src + "/kernel"); // (H, hd, D)
                    o[dst + ".weight"] = outK.Reshape(outK.Shape[0] * outK.Shape[1], outK.Shape[2]).Transpose2D();
                    o[dst + ".bias"] = Get(src + "/bias");
                    break;
            }
        }

        if (Has("stem/kernel"))
        {
            foreach (var r in MixerTop) Apply(r, "", "");
            for (int i = 0; Has($"{MixerBlockName(i)}/{MixerBlock[0].Google}/scale"); i++)
                foreach (var r in MixerBlock) Apply(r, MixerBlockName(i) + "/", $"blocks.{i}.");
            return o;
        }
        if (Has("MAPHead_0/probe")) throw new CheckpointException(file, "attention-pooling (MAP) heads are not supported yet");
        bool bigVision = Has("pos_embedding");
        var block = VitBlock(bigVision);
        foreach (var r in VitTop(bigVision)) Apply(r, "", "");
        for (int i = 0; Has($"{ViTBlockName(i)}/{block[0].Google}/scale"); i++)
            foreach (var r in block) Apply(r, ViTBlockName(i) + "/", $"blocks.{i}.");
        return o;
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
    /// The inverse of <see cref="ToTimm"/>: a model's timm-named weights in Google vision_transformer's layout (no
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
        return null;
    }

    private static HostArray Expect(HostArray a, int rank, string file, string name) =>
        a.Shape.Length == rank ? a : throw new CheckpointException(file, $"expected a rank-{rank} array, found shape {a}", name);
}
