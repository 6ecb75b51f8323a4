namespace VitSharp.Checkpoints;

/// <summary>
/// Hugging Face transformers names ⇄ timm names, for the vision models that are timm ViTs under other names:
/// ViT (ViTModel, ViTForImageClassification), DeiT (with its distillation token and teacher head), DINOv2 (layer scale),
/// and the CLIP and SigLIP vision towers (pre-norm; SigLIP's attention-pool head). Reading and writing walk the same
/// tables (<see cref="Rule"/>); the few layouts that are not renames (registers, SigLIP's stacked in_proj) are written
/// as a pair beside each other.
/// </summary>
public static class HuggingFaceNames
{
    /// <summary>Which Hugging Face model class a folder holds (its name layout and config.json fields).</summary>
    public enum Kind
    {
        /// <summary>weight and (if present) bias under the same layout.</summary>
        Linear,
        /// <summary>one tensor under the same layout.</summary>
        Param,
        /// <summary>one tensor whose leading batch axes Hugging Face leaves out (CLIP's class embedding (D) and position
        /// table (T, D) ⇄ timm's (1, 1, D) and (1, T, D)).</summary>
        Squeezed,
        /// <summary>separate query, key and value projections (the three names in <see cref="Rule.Parts"/>) ⇄ timm's fused qkv.</summary>
        Fuse,
    }

    /// <summary>One module: its Hugging Face name (relative to the model prefix, and to the layer for block rules), its
    /// timm name, and whether a checkpoint may leave it out.</summary>
    public sealed record Rule(string Hf, string Timm, Kind Kind = Kind.Linear, bool Optional = false, string[]? Parts = null);

    private static Rule Qkv(string a, string q, string k, string v) => new(a, "attn.qkv", Kind.Fuse, Parts: [a + q, a + k, a + v]);

    /// <summary>ViT, DeiT and DINOv2 outside the blocks (under the model prefix: "vit.", "deit." or none).</summary>
    private static readonly Rule[] VitTop =
    [
        new("embeddings.patch_embeddings.projection", "patch_embed.proj"),
        new("embeddings.cls_token", "cls_token", Kind.Param, Optional: true),
        new("embeddings.distillation_token", "dist_token", Kind.Param, Optional: true),
        new("embeddings.position_embeddings", "pos_embed", Kind.Param),
        new("layernorm", "norm"),
    ];

    /// <summary>One ViT/DeiT layer, "encoder.layer.{i}." ⇄ "blocks.{i}.".</summary>
    private static readonly Rule[] VitBlock =
    [
        new("layernorm_before", "norm1"),
        new("layernorm_after", "norm2"),
        Qkv("attention.attention.", "query", "key", "value"),
        new("attention.output.dense", "attn.proj"),
        new("intermediate.dense", "mlp.fc1"),
        new("output.dense", "mlp.fc2"),
    ];

    /// <summary>One DINOv2 layer, "encoder.layer.{i}." ⇄ "blocks.{i}.".</summary>
    private static readonly Rule[] DinoBlock =
    [
        new("norm1", "norm1"),
        new("norm2", "norm2"),
        Qkv("attention.attention.", "query", "key", "value"),
        new("attention.output.dense", "attn.proj"),
        new("mlp.fc1", "mlp.fc1"),
        new("mlp.fc2", "mlp.fc2"),
        new("layer_scale1.lambda1", "ls1.gamma", Kind.Param, Optional: true),
        new("layer_scale2.lambda1", "ls2.gamma", Kind.Param, Optional: true),
    ];

    /// <summary>CLIPVisionModel / SiglipVisionModel outside the blocks (under "vision_model."): pre_layrnorm is HF's spelling.</summary>
    private static readonly Rule[] ClipTop =
    [
        new("embeddings.patch_embedding", "patch_embed.proj"),
        new("embeddings.class_embedding", "cls_token", Kind.Squeezed, Optional: true),
        new("embeddings.position_embedding.weight", "pos_embed", Kind.Squeezed),
        new("pre_layrnorm", "norm_pre", Optional: true),
        new("post_layernorm", "norm"),
    ];

    /// <summary>One CLIP/SigLIP layer, "encoder.layers.{i}." ⇄ "blocks.{i}.".</summary>
    private static readonly Rule[] ClipBlock =
    [
        new("layer_norm1", "norm1"),
        new("layer_norm2", "norm2"),
        Qkv("self_attn.", "q_proj", "k_proj", "v_proj"),
        new("self_attn.out_proj", "attn.proj"),
        new("mlp.fc1", "mlp.fc1"),
        new("mlp.fc2", "mlp.fc2"),
    ];

    /// <summary>SigLIP's attention-pool head (under "vision_model.head."), its stacked in_proj aside.</summary>
    private static readonly Rule[] SiglipHead =
    [
        new("head.probe", "attn_pool.latent", Kind.Param),
        new("head.attention.out_proj", "attn_pool.proj"),
        new("head.layernorm", "attn_pool.norm"),
        new("head.mlp.fc1", "attn_pool.mlp.fc1"),
        new("head.mlp.fc2", "attn_pool.mlp.fc2"),
    ];

    private static (Rule[] top, Rule[] block, string layer) Tables(string family) => family switch
    {
        "clip" => (ClipTop, ClipBlock, "encoder.layers."),
        "dinov2" => (VitTop, DinoBlock, "encoder.layer."),
        _ => (VitTop, VitBlock, "encoder.layer."),
    };

    /// <summary>The family these names are, or null: "vit", "deit", "dinov2" or "clip" (CLIP and SigLIP share names).</summary>
    public static string? Family(IReadOnlyDictionary<string, HostArray> w)
    {
        foreach (var p in new[] { "", "vit.", "deit.", "vision_model." })
        {
            if (w.ContainsKey(p + "embeddings.patch_embedding.weight")) return "clip";
            if (!w.ContainsKey(p + "embeddings.patch_embeddings.projection.weight") && !w.ContainsKey(p + "embeddings.cls_token")) continue;
            if (w.ContainsKey(p + "encoder.layer.0.norm1.weight") || w.ContainsKey(p + "embeddings.mask_token") && p == "") return "dinov2";
            return p == "deit." || w.ContainsKey(p + "embeddings.distillation_token") ? "deit" : "vit";
        }
        return null;
    }

    public static bool IsHuggingFace(IReadOnlyDictionary<string, HostArray> w) => Family(w) is not null;

    private static string Prefix(IReadOnlyDictionary<string, HostArray> w) =>
        new[] { "vit.", "deit.", "vision_model." }.FirstOrDefault(p => w.Keys.Any(k => k.StartsWith(p + "embeddings.", StringComparison.Ordinal))) ?? "";

    public static Dictionary<string, HostArray> ToTimm(IReadOnlyDictionary<string, HostArray> w, string file)
    {
        var family = Family(w) ?? throw new CheckpointException(file, "tensor names are not Hugging Face ViT, DeiT, DINOv2, CLIP or SigLIP names");
        string p = Prefix(w);
        HostArray Get(string name) => w.TryGetValue(name, out var a) ? a : throw new CheckpointException(file, "missing from the checkpoint", name);
        var o = new Dictionary<string, HostArray>();
        void Copy(string src, string dst, bool required = true)
        {
            if (!required && !w.ContainsKey(src + ".weight")) return;
            o[dst + ".weight"] = Get(src + ".weight");
            if (w.ContainsKey(src + ".bias")) o[dst + ".bias"] = Get(src + ".bias");
        }
        void Apply(Rule r, string h, string t)
        {
            string src = h + r.Hf, dst = t + r.Timm;
            switch (r.Kind)
            {
                case Kind.Linear: Copy(src, dst, !r.Optional); break;
                case Kind.Param:
                    if (!r.Optional || w.ContainsKey(src)) o[dst] = Get(src);
                    break;
                case Kind.Squeezed:
                    if (r.Optional && !w.ContainsKey(src)) return;
                    var a = Get(src);
                    if (a.Shape.Length is 0 or > 2) throw new CheckpointException(file, $"expected a rank-1 or rank-2 tensor, found shape {a}", src);
                    o[dst] = a.Reshape([.. Enumerable.Repeat(1, 3 - a.Shape.Length), .. a.Shape]);
                    break;
                case Kind.Fuse:
                    var parts = r.Parts!.Select(s => h + s).ToArray();
                    o[dst + ".weight"] = HostArray.Concat0(parts.Select(s => Get(s + ".weight")).ToArray());
                    if (w.ContainsKey(parts[0] + ".bias")) o[dst + ".bias"] = HostArray.Concat0(parts.Select(s => Get(s + ".bias")).ToArray());
                    break;
            }
        }

        var (top, block, layer) = Tables(family);
        foreach (var r in top) Apply(r, p, "");
        bool dino = family == "dinov2";
        if (dino && w.ContainsKey(p + "embeddings.register_tokens"))
        {
            // Dinov2WithRegisters: the registers go between the class token and the patches, after the position
            // embedding (which covers the class token and the patches) is added: zero rows for them compute the same.
            var reg = Get(p + "embeddings.register_tokens");
            if (reg.Shape.Length != 3 || reg.Shape[0] != 1)
                throw new CheckpointException(file, $"expected shape (1, registers, width), found {reg}", p + "embeddings.register_tokens");
            o["reg_token"] = reg;
            var pos = o["pos_embed"];
            int d = pos.Shape[^1], r = reg.Shape[1];
            var padded = new float[pos.Data.Length + r * d];
            Array.Copy(pos.Data, padded, d);
            Array.Copy(pos.Data, d, padded, (1 + r) * d, pos.Data.Length - d);
            o["pos_embed"] = new HostArray([1, pos.Shape[1] + r, d], padded);
        }
        if (dino && w.Keys.Any(k => k.Contains(".mlp.weights_in.", StringComparison.Ordinal)))
            throw new CheckpointException(file, "DINOv2 with a SwiGLU MLP (use_swiglu_ffn) is not supported: VitSharp's MLP is fc1 → activation → fc2");
        for (int i = 0; w.ContainsKey($"{p}{layer}{i}.{block[0].Hf}.weight"); i++)
            foreach (var r in block) Apply(r, $"{p}{layer}{i}.", $"blocks.{i}.");

        if (family == "clip")
        {
            if (w.ContainsKey("visual_projection.weight"))
            {
                // CLIPModel's image embedding: a projection without bias of the pooled features, VitSharp's head.
                var proj = Get("visual_projection.weight");
                o["head.weight"] = proj;
                o["head.bias"] = new HostArray([proj.Shape[0]], new float[proj.Shape[0]]);
            }
            if (w.ContainsKey(p + "head.probe"))
            {
                foreach (var r in SiglipHead) Apply(r, p, "");
                // nn.MultiheadAttention's in_proj stacks q, k and v: q is the first third, k and v (timm's kv) the rest.
                var inW = Get(p + "head.attention.in_proj_weight");
                var inB = Get(p + "head.attention.in_proj_bias");
                int d = inW.Shape[1];
                o["attn_pool.q.weight"] = new HostArray([d, d], inW.Data[..(d * d)]);
                o["attn_pool.kv.weight"] = new HostArray([2 * d, d], inW.Data[(d * d)..]);
                o["attn_pool.q.bias"] = new HostArray([d], inB.Data[..d]);
                o["attn_pool.kv.bias"] = new HostArray([2 * d], inB.Data[d..]);
            }
            return o;
        }
        Copy(p + "pooler.dense", "pre_logits.fc", required: false);
        Copy("pooler.dense", "pre_logits.fc", required: false);
        Copy("classifier", "head", required: false);
        Copy("cls_classifier", "head", required: false);
        Copy("distillation_classifier", "head_dist", required: false);
        return o;
    }

    /// <summary>
    /// The inverse of <see cref="ToTimm"/> for one <paramref name="family"/> ("vit", "deit", "dinov2", "clip") under the
    /// model <paramref name="prefix"/> ("vit.", "deit.", "vision_model." or ""): the names transformers' model class
    /// loads. The weights must already have the tensors that family's modules hold (a caller adds zero biases where
    /// timm has none). With register tokens (DINOv2), their rows of the position table, after the class token, are
    /// dropped (Dinov2WithRegisters keeps none for its registers) and must be zero.
    /// </summary>
    public static Dictionary<string, HostArray> FromTimm(IReadOnlyDictionary<string, HostArray> w, string family, string prefix, string file)
    {
        HostArray Get(string name) => w.TryGetValue(name, out var a) ? a : throw new CheckpointException(file, "missing from the model's weights", name);
        var o = new Dictionary<string, HostArray>();
        void Copy(string src, string dst, bool required = true)
        {
            if (!required && !w.ContainsKey(src + ".weight")) return;
            o[dst + ".weight"] = Get(src + ".weight");
            if (w.ContainsKey(src + ".bias")) o[dst + ".bias"] = Get(src + ".bias");
        }
        void Apply(Rule r, string h, string t)
        {
            string dst = h + r.Hf, src = t + r.Timm;
            switch (r.Kind)
            {
                case Kind.Linear: Copy(src, dst, !r.Optional); break;
                case Kind.Param:
                    if (!r.Optional || w.ContainsKey(src)) o[dst] = Get(src);
                    break;
                case Kind.Squeezed:
                    if (r.Optional && !w.ContainsKey(src)) return;
                    var a = Get(src);
                    o[dst] = a.Reshape(dst.EndsWith("class_embedding", StringComparison.Ordinal) ? a.Shape[2..] : a.Shape[1..]);
                    break;
                case Kind.Fuse:
                    foreach (var leaf in new[] { "weight", "bias" })
                    {
                        if (leaf == "bias" && !w.ContainsKey(src + ".bias")) continue;
                        var f = Get(src + "." + leaf);
                        int n = f.Shape[0] / 3, stride = (int)(f.Count / 3);
                        for (int k = 0; k < 3; k++)
                            o[h + r.Parts![k] + "." + leaf] = new HostArray([n, .. f.Shape[1..]], f.Data[(k * stride)..((k + 1) * stride)]);
                    }
                    break;
            }
        }

        var (top, block, layer) = Tables(family);
        foreach (var r in top) Apply(r, prefix, "");
        if (family == "dinov2")
        {
            int d = Get("pos_embed").Shape[2];
            o[prefix + "embeddings.mask_token"] = new HostArray([1, d], new float[d]);
            if (w.TryGetValue("reg_token", out var reg))
            {
                var pos = Get("pos_embed");
                int r = reg.Shape[1];
                if (pos.Data.AsSpan(d, r * d).ContainsAnyExcept(0f))
                    throw new ConversionException(file, "hf", ["position rows for register tokens (Dinov2WithRegisters adds none to its registers)"]);
                o[prefix + "embeddings.register_tokens"] = reg;
                o[prefix + "embeddings.position_embeddings"] = new HostArray([1, pos.Shape[1] - r, d], [.. pos.Data[..d], .. pos.Data[((1 + r) * d)..]]);
            }
        }
        for (int i = 0; w.ContainsKey($"blocks.{i}.norm1.weight"); i++)
            foreach (var r in block) Apply(r, $"{prefix}{layer}{i}.", $"blocks.{i}.");

        if (family == "clip")
        {
            if (w.ContainsKey("attn_pool.latent"))
            {
                foreach (var r in SiglipHead) Apply(r, prefix, "");
                o[prefix + "head.attention.in_proj_weight"] = HostArray.Concat0(Get("attn_pool.q.weight"), Get("attn_pool.kv.weight"));
                o[prefix + "head.attention.in_proj_bias"] = HostArray.Concat0(Get("attn_pool.q.bias"), Get("attn_pool.kv.bias"));
            }
            return o;
        }
        Copy("pre_logits.fc", "pooler.dense", required: false);
        if (w.ContainsKey("head_dist.weight"))
        {
            Copy("head", "cls_classifier");
            Copy("head_dist", "distillation_classifier");
        }
        else Copy("head", "classifier", required: false);
        return o;
    }
}
