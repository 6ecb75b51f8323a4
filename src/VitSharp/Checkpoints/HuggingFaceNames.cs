namespace VitSharp.Checkpoints;

/// <summary>
/// Hugging Face transformers names → timm names, for the vision models that are timm ViTs under other names:
/// ViT (ViTModel, ViTForImageClassification), DeiT (with its distillation token and teacher head), DINOv2 (layer scale),
/// and the CLIP and SigLIP vision towers (pre-norm; SigLIP's attention-pool head).
/// </summary>
public static class HuggingFaceNames
{
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
        void Fuse(string dst, params string[] parts)
        {
            o[dst + ".weight"] = HostArray.Concat0(parts.Select(s => Get(s + ".weight")).ToArray());
            if (w.ContainsKey(parts[0] + ".bias")) o[dst + ".bias"] = HostArray.Concat0(parts.Select(s => Get(s + ".bias")).ToArray());
        }

        if (family == "clip") return ClipToTimm(w, p, Get, Copy, Fuse, o);

        Copy(p + "embeddings.patch_embeddings.projection", "patch_embed.proj");
        if (w.ContainsKey(p + "embeddings.cls_token")) o["cls_token"] = Get(p + "embeddings.cls_token");
        if (w.ContainsKey(p + "embeddings.distillation_token")) o["dist_token"] = Get(p + "embeddings.distillation_token");
        o["pos_embed"] = Get(p + "embeddings.position_embeddings");
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
        for (int i = 0; w.ContainsKey($"{p}encoder.layer.{i}.{(dino ? "norm1" : "layernorm_before")}.weight"); i++)
        {
            var l = $"{p}encoder.layer.{i}";
            var t = $"blocks.{i}";
            Copy(l + (dino ? ".norm1" : ".layernorm_before"), t + ".norm1");
            Copy(l + (dino ? ".norm2" : ".layernorm_after"), t + ".norm2");
            Fuse(t + ".attn.qkv", l + ".attention.attention.query", l + ".attention.attention.key", l + ".attention.attention.value");
            Copy(l + ".attention.output.dense", t + ".attn.proj");
            Copy(l + (dino ? ".mlp.fc1" : ".intermediate.dense"), t + ".mlp.fc1");
            Copy(l + (dino ? ".mlp.fc2" : ".output.dense"), t + ".mlp.fc2");
            if (w.ContainsKey(l + ".layer_scale1.lambda1"))
            {
                o[t + ".ls1.gamma"] = Get(l + ".layer_scale1.lambda1");
                o[t + ".ls2.gamma"] = Get(l + ".layer_scale2.lambda1");
            }
        }
        Copy(p + "layernorm", "norm");
        Copy(p + "pooler.dense", "pre_logits.fc", required: false);
        Copy("pooler.dense", "pre_logits.fc", required: false);
        Copy("classifier", "head", required: false);
        Copy("cls_classifier", "head", required: false);
        Copy("distillation_classifier", "head_dist", required: false);
        return o;
    }

    /// <summary>CLIPVisionModel / SiglipVisionModel: class embedding (D) and position table (T, D) without the batch axis,
    /// pre_layrnorm (CLIP's norm_pre, HF's spelling), per-projection attention, post_layernorm, SigLIP's probe head.</summary>
    private static Dictionary<string, HostArray> ClipToTimm(IReadOnlyDictionary<string, HostArray> w, string p, Func<string, HostArray> get,
        Action<string, string, bool> copy, Action<string, string[]> fuse, Dictionary<string, HostArray> o)
    {
        copy(p + "embeddings.patch_embedding", "patch_embed.proj", true);
        if (w.ContainsKey(p + "embeddings.class_embedding"))
        {
            var c = get(p + "embeddings.class_embedding");
            o["cls_token"] = c.Reshape(1, 1, c.Shape[^1]);
        }
        var pos = get(p + "embeddings.position_embedding.weight");
        o["pos_embed"] = pos.Reshape(1, pos.Shape[0], pos.Shape[1]);
        copy(p + "pre_layrnorm", "norm_pre", false);
        for (int i = 0; w.ContainsKey($"{p}encoder.layers.{i}.layer_norm1.weight"); i++)
        {
            var l = $"{p}encoder.layers.{i}";
            var t = $"blocks.{i}";
            copy(l + ".layer_norm1", t + ".norm1", true);
            copy(l + ".layer_norm2", t + ".norm2", true);
            fuse(t + ".attn.qkv", [l + ".self_attn.q_proj", l + ".self_attn.k_proj", l + ".self_attn.v_proj"]);
            copy(l + ".self_attn.out_proj", t + ".attn.proj", true);
            copy(l + ".mlp.fc1", t + ".mlp.fc1", true);
            copy(l + ".mlp.fc2", t + ".mlp.fc2", true);
        }
        copy(p + "post_layernorm", "norm", true);
        if (w.ContainsKey("visual_projection.weight"))
        {
            // CLIPModel's image embedding: a projection without bias of the pooled features, VitSharp's head.
            var proj = get("visual_projection.weight");
            o["head.weight"] = proj;
            o["head.bias"] = new HostArray([proj.Shape[0]], new float[proj.Shape[0]]);
        }
        if (w.ContainsKey(p + "head.probe"))
        {
            o["attn_pool.latent"] = get(p + "head.probe");
            // nn.MultiheadAttention's in_proj stacks q, k and v: q is the first third, k and v (timm's kv) the rest.
            var inW = get(p + "head.attention.in_proj_weight");
            var inB = get(p + "head.attention.in_proj_bias");
            int d = inW.Shape[1];
            o["attn_pool.q.weight"] = new HostArray([d, d], inW.Data[..(d * d)]);
            o["attn_pool.kv.weight"] = new HostArray([2 * d, d], inW.Data[(d * d)..]);
            o["attn_pool.q.bias"] = new HostArray([d], inB.Data[..d]);
            o["attn_pool.kv.bias"] = new HostArray([2 * d], inB.Data[d..]);
            copy(p + "head.attention.out_proj", "attn_pool.proj", true);
            copy(p + "head.layernorm", "attn_pool.norm", true);
            copy(p + "head.mlp.fc1", "attn_pool.mlp.fc1", true);
            copy(p + "head.mlp.fc2", "attn_pool.mlp.fc2", true);
        }
        return o;
    }
}
