namespace VitSharp.Checkpoints;

/// <summary>
/// Google's Flax naming (vision_transformer, big_vision's `params/` prefix, `opt/target/` training checkpoints) →
/// timm names. The one place that knows Google's layouts: HWIO conv kernels, in×out dense kernels, per-head q/k/v.
/// </summary>
public static class GoogleNames
{
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

        void Dense(string src, string dst, bool required = true)
        {
            if (!required && !Has(src + "/kernel")) return;
            o[dst + ".weight"] = Expect(Get(src + "/kernel"), 2, file, prefix + src + "/kernel").Transpose2D();
            if (Has(src + "/bias")) o[dst + ".bias"] = Get(src + "/bias");
        }
        void Norm(string src, string dst)
        {
            o[dst + ".weight"] = Get(src + "/scale");
            o[dst + ".bias"] = Get(src + "/bias");
        }
        void Conv(string src, string dst)
        {
            o[dst + ".weight"] = Expect(Get(src + "/kernel"), 4, file, prefix + src + "/kernel").Permute(3, 2, 0, 1); // HWIO → OIHW
            o[dst + ".bias"] = Get(src + "/bias");
        }

        if (Has("stem/kernel"))
        {
            Conv("stem", "stem.proj");
            for (int i = 0; Has($"MixerBlock_{i}/LayerNorm_0/scale"); i++)
            {
                var b = $"MixerBlock_{i}";
                Norm(b + "/LayerNorm_0", $"blocks.{i}.norm1");
                Dense(b + "/token_mixing/Dense_0", $"blocks.{i}.mlp_tokens.fc1");
                Dense(b + "/token_mixing/Dense_1", $"blocks.{i}.mlp_tokens.fc2");
                Norm(b + "/LayerNorm_1", $"blocks.{i}.norm2");
                Dense(b + "/channel_mixing/Dense_0", $"blocks.{i}.mlp_channels.fc1");
                Dense(b + "/channel_mixing/Dense_1", $"blocks.{i}.mlp_channels.fc2");
            }
            Norm("pre_head_layer_norm", "norm");
            Dense("head", "head", required: false);
            return o;
        }

        // big_vision numbers the block's sub-modules differently and keeps the position embedding at the top level.
        bool bigVision = Has("pos_embedding");
        var (ln1, attn, ln2, mlp) = bigVision
            ? ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")
            : ("LayerNorm_0", "MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3");
        Conv("embedding", "patch_embed.proj");
        if (Has("cls")) o["cls_token"] = Get("cls");
        o["pos_embed"] = Get(bigVision ? "pos_embedding" : "Transformer/posembed_input/pos_embedding");
        for (int i = 0; Has($"Transformer/encoderblock_{i}/{ln1}/scale"); i++)
        {
            var b = $"Transformer/encoderblock_{i}";
            var t = $"blocks.{i}";
            Norm($"{b}/{ln1}", t + ".norm1");
            Norm($"{b}/{ln2}", t + ".norm2");
            var qkvW = new List<HostArray>();
            var qkvB = new List<HostArray>();
            foreach (var part in new[] { "query", "key", "value" })
            {
                var k = Expect(Get($"{b}/{attn}/{part}/kernel"), 3, file, $"{prefix}{b}/{attn}/{part}/kernel"); // (D, H, hd)
                qkvW.Add(k.Reshape(k.Shape[0], k.Shape[1] * k.Shape[2]).Transpose2D());
                if (Has($"{b}/{attn}/{part}/bias"))
                {
                    var bias = Get($"{b}/{attn}/{part}/bias");
                    qkvB.Add(bias.Reshape((int)bias.Count));
                }
            }
            o[t + ".attn.qkv.weight"] = HostArray.Concat0([.. qkvW]);
            if (qkvB.Count == 3) o[t + ".attn.qkv.bias"] = HostArray.Concat0([.. qkvB]);
            var outK = Expect(Get($"{b}/{attn}/out/kernel"), 3, file, $"{prefix}{b}/{attn}/out/kernel"); // (H, hd, D)
            o[t + ".attn.proj.weight"] = outK.Reshape(outK.Shape[0] * outK.Shape[1], outK.Shape[2]).Transpose2D();
            o[t + ".attn.proj.bias"] = Get($"{b}/{attn}/out/bias");
            Dense($"{b}/{mlp}/Dense_0", t + ".mlp.fc1");
            Dense($"{b}/{mlp}/Dense_1", t + ".mlp.fc2");
        }
        Norm("Transformer/encoder_norm", "norm");
        Dense("pre_logits", "pre_logits.fc", required: false);
        Dense("head", "head", required: false);
        if (Has("MAPHead_0/probe")) throw new CheckpointException(file, "attention-pooling (MAP) heads are not supported yet");
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
