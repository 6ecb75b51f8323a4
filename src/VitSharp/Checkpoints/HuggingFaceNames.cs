namespace VitSharp.Checkpoints;

/// <summary>Hugging Face transformers ViT names (ViTModel, ViTForImageClassification) → timm names.</summary>
public static class HuggingFaceNames
{
    public static bool IsHuggingFace(IReadOnlyDictionary<string, HostArray> w) =>
        w.ContainsKey("vit.embeddings.cls_token") || w.ContainsKey("embeddings.cls_token") ||
        w.ContainsKey("vit.embeddings.patch_embeddings.projection.weight") || w.ContainsKey("embeddings.patch_embeddings.projection.weight");

    public static Dictionary<string, HostArray> ToTimm(IReadOnlyDictionary<string, HostArray> w, string file)
    {
        string p = w.ContainsKey("vit.embeddings.patch_embeddings.projection.weight") ? "vit." : "";
        HostArray Get(string name) => w.TryGetValue(name, out var a) ? a : throw new CheckpointException(file, "missing from the checkpoint", name);
        var o = new Dictionary<string, HostArray>();
        void Copy(string src, string dst, bool required = true)
        {
            if (!required && !w.ContainsKey(src + ".weight")) return;
            o[dst + ".weight"] = Get(src + ".weight");
            if (w.ContainsKey(src + ".bias")) o[dst + ".bias"] = Get(src + ".bias");
        }

        Copy(p + "embeddings.patch_embeddings.projection", "patch_embed.proj");
        if (w.ContainsKey(p + "embeddings.cls_token")) o["cls_token"] = Get(p + "embeddings.cls_token");
        o["pos_embed"] = Get(p + "embeddings.position_embeddings");
        for (int i = 0; w.ContainsKey($"{p}encoder.layer.{i}.layernorm_before.weight"); i++)
        {
            var l = $"{p}encoder.layer.{i}";
            var t = $"blocks.{i}";
            Copy(l + ".layernorm_before", t + ".norm1");
            Copy(l + ".layernorm_after", t + ".norm2");
            o[t + ".attn.qkv.weight"] = HostArray.Concat0(Get(l + ".attention.attention.query.weight"),
                Get(l + ".attention.attention.key.weight"), Get(l + ".attention.attention.value.weight"));
            if (w.ContainsKey(l + ".attention.attention.query.bias"))
                o[t + ".attn.qkv.bias"] = HostArray.Concat0(Get(l + ".attention.attention.query.bias"),
                    Get(l + ".attention.attention.key.bias"), Get(l + ".attention.attention.value.bias"));
            Copy(l + ".attention.output.dense", t + ".attn.proj");
            Copy(l + ".intermediate.dense", t + ".mlp.fc1");
            Copy(l + ".output.dense", t + ".mlp.fc2");
        }
        Copy(p + "layernorm", "norm");
        Copy("pooler.dense", "pre_logits.fc", required: false);
        Copy("classifier", "head", required: false);
        return o;
    }
}
