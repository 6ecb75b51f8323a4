using VitSharp.Checkpoints;

namespace VitSharp.Tests.ZeroShot;

/// <summary>
/// Writes a big_vision two-tower .npz from a Hugging Face SiglipModel's weights by inverting transformers' own
/// conversion (src/transformers/models/siglip/convert_siglip_to_hf.py, create_rename_keys / rename_key /
/// read_in_q_k_v_head), re-derived here from that script's semantics with plain index arithmetic — independent of
/// VitSharp's GoogleNames. The script, big_vision name → HF name:
/// <list type="bullet">
/// <item>img/embedding/kernel (P, P, C, D) → patch_embedding.weight = kernel.transpose(3, 2, 0, 1) (D, C, P, P).</item>
/// <item>img/pos_embedding (1, N, D), txt/pos_embedding (1, T, D) → position_embedding.weight = reshape(-1, D).</item>
/// <item>…/MultiHeadDotProductAttention_0/{query,key,value}/kernel (D, H, hd) → {q,k,v}_proj.weight = reshape(-1, D).T;
/// their biases (H, hd) → reshape(-1).</item>
/// <item>…/out/kernel (H, hd, D) → out_proj.weight = reshape(-1, D).T; every other kernel (in, out) → weight = kernel.T.</item>
/// <item>LayerNorm scale/bias → weight/bias; txt/Embed_0/embedding → token_embedding.weight as it is.</item>
/// <item>img/MAPHead_0/probe → head.probe; its query, key and value kernels → in_proj_weight = the three
/// reshape(-1, D).T stacked (q, k, v), their biases likewise into in_proj_bias.</item>
/// <item>t → logit_scale, b → logit_bias.</item>
/// </list>
/// </summary>
public static class BigVisionNpz
{
    /// <summary>
    /// The big_vision arrays of the HF weights <paramref name="hf"/> with <paramref name="heads"/> heads per tower (what
    /// the HF config says and big_vision's per-head kernels hold): image tower under <c>{prefix}img/</c>, text under
    /// <c>{prefix}txt/</c>, t and b under <paramref name="prefix"/>. <paramref name="scanned"/>: the image encoder as
    /// big_vision's scan=True saves it (one array per parameter under Transformer/encoderblock/, the block its leading axis).
    /// </summary>
    public static Dictionary<string, HostArray> FromHf(IReadOnlyDictionary<string, HostArray> hf, int imageHeads, int textHeads,
        string prefix = "params/", bool scanned = false, bool text = true)
    {
        var o = new Dictionary<string, HostArray>(StringComparer.Ordinal);
        HostArray H(string n) => hf[n];
        string img = prefix + "img/", txt = prefix + "txt/";

        // Patch embedding: HF[o, i, y, x] = bv[y, x, i, o].
        var pe = H("vision_model.embeddings.patch_embedding.weight");
        int dOut = pe.Shape[0], cIn = pe.Shape[1], p = pe.Shape[2];
        var k = new float[pe.Data.Length];
        for (int oc = 0; oc < dOut; oc++)
            for (int ic = 0; ic < cIn; ic++)
                for (int y = 0; y < p; y++)
                    for (int x = 0; x < p; x++)
                        k[((y * p + x) * cIn + ic) * dOut + oc] = pe.Data[((oc * cIn + ic) * p + y) * p + x];
        o[img + "embedding/kernel"] = new HostArray([p, p, cIn, dOut], k);
        o[img + "embedding/bias"] = H("vision_model.embeddings.patch_embedding.bias");
        o[img + "pos_embedding"] = Batch(H("vision_model.embeddings.position_embedding.weight"));

        var blocks = new List<Dictionary<string, HostArray>>();
        for (int i = 0; hf.ContainsKey($"vision_model.encoder.layers.{i}.layer_norm1.weight"); i++)
        {
            var b = new Dictionary<string, HostArray>(StringComparer.Ordinal);
            Block(hf, $"vision_model.encoder.layers.{i}.", b, "", imageHeads);
            blocks.Add(b);
        }
        if (!scanned)
            for (int i = 0; i < blocks.Count; i++)
                foreach (var (n, a) in blocks[i]) o[$"{img}Transformer/encoderblock_{i}/{n}"] = a;
        else
            foreach (var n in blocks[0].Keys)
            {
                var parts = blocks.Select(b => b[n]).ToArray();
                o[$"{img}Transformer/encoderblock/{n}"] = new HostArray([parts.Length, .. parts[0].Shape], parts.SelectMany(a => a.Data).ToArray());
            }
        Norm(hf, "vision_model.post_layernorm", o, img + "Transformer/encoder_norm");

        // MAP head: in_proj stacks q, k, v (each kernel.reshape(-1, D).T).
        string m = img + "MAPHead_0/";
        o[m + "probe"] = H("vision_model.head.probe");
        var inW = H("vision_model.head.attention.in_proj_weight");
        var inB = H("vision_model.head.attention.in_proj_bias");
        int d = inW.Shape[1];
        string[] qkv = ["query", "key", "value"];
        for (int part = 0; part < 3; part++)
        {
            var w = new HostArray([d, d], inW.Data[(part * d * d)..((part + 1) * d * d)]);
            o[$"{m}MultiHeadDotProductAttention_0/{qkv[part]}/kernel"] = QkvKernel(w, imageHeads);
            o[$"{m}MultiHeadDotProductAttention_0/{qkv[part]}/bias"] = new HostArray([imageHeads, d / imageHeads], inB.Data[(part * d)..((part + 1) * d)]);
        }
        o[m + "MultiHeadDotProductAttention_0/out/kernel"] = OutKernel(H("vision_model.head.attention.out_proj.weight"), imageHeads);
        o[m + "MultiHeadDotProductAttention_0/out/bias"] = H("vision_model.head.attention.out_proj.bias");
        Norm(hf, "vision_model.head.layernorm", o, m + "LayerNorm_0");
        Dense(hf, "vision_model.head.mlp.fc1", o, m + "MlpBlock_0/Dense_0");
        Dense(hf, "vision_model.head.mlp.fc2", o, m + "MlpBlock_0/Dense_1");

        if (text)
        {
            o[txt + "Embed_0/embedding"] = H("text_model.embeddings.token_embedding.weight");
            o[txt + "pos_embedding"] = Batch(H("text_model.embeddings.position_embedding.weight"));
            for (int i = 0; hf.ContainsKey($"text_model.encoder.layers.{i}.layer_norm1.weight"); i++)
                Block(hf, $"text_model.encoder.layers.{i}.", o, $"{txt}Encoder_0/encoderblock_{i}/", textHeads);
            Norm(hf, "text_model.final_layer_norm", o, txt + "Encoder_0/encoder_norm");
            Dense(hf, "text_model.head", o, txt + "head");
            o[prefix + "t"] = H("logit_scale");
            o[prefix + "b"] = H("logit_bias");
        }
        return o;
    }

    /// <summary>Only the image tower, at the top level of a big_vision image npz (its arrays under <c>params/</c>, no
    /// <c>img/</c>), as big_vision saves an image model.</summary>
    public static Dictionary<string, HostArray> ImageOnly(IReadOnlyDictionary<string, HostArray> hf, int heads) =>
        FromHf(hf, heads, heads, prefix: "", text: false).ToDictionary(kv => "params/" + kv.Key["img/".Length..], kv => kv.Value);

    private static void Block(IReadOnlyDictionary<string, HostArray> hf, string s, Dictionary<string, HostArray> o, string d, int heads)
    {
        Norm(hf, s + "layer_norm1", o, d + "LayerNorm_0");
        Norm(hf, s + "layer_norm2", o, d + "LayerNorm_1");
        foreach (var (hfName, bv) in new[] { ("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value") })
        {
            var w = hf[$"{s}self_attn.{hfName}.weight"];
            o[$"{d}MultiHeadDotProductAttention_0/{bv}/kernel"] = QkvKernel(w, heads);
            var b = hf[$"{s}self_attn.{hfName}.bias"];
            o[$"{d}MultiHeadDotProductAttention_0/{bv}/bias"] = new HostArray([heads, b.Shape[0] / heads], b.Data);
        }
        o[d + "MultiHeadDotProductAttention_0/out/kernel"] = OutKernel(hf[s + "self_attn.out_proj.weight"], heads);
        o[d + "MultiHeadDotProductAttention_0/out/bias"] = hf[s + "self_attn.out_proj.bias"];
        Dense(hf, s + "mlp.fc1", o, d + "MlpBlock_0/Dense_0");
        Dense(hf, s + "mlp.fc2", o, d + "MlpBlock_0/Dense_1");
    }

    /// <summary>HF weight (H·hd, D) = kernel.reshape(-1, D).T with kernel (D, H, hd): kernel[d, h, e] = W[h·hd + e, d].</summary>
    private static HostArray QkvKernel(HostArray w, int heads) => Transposed(w, [w.Shape[1], heads, w.Shape[0] / heads]);

    /// <summary>HF weight (D, H·hd) = kernel.reshape(-1, D).T with kernel (H, hd, D): kernel[h, e, d] = W[d, h·hd + e].</summary>
    private static HostArray OutKernel(HostArray w, int heads) => Transposed(w, [heads, w.Shape[1] / heads, w.Shape[0]]);

    /// <summary>The (rows, cols) matrix <paramref name="w"/> transposed, then viewed with <paramref name="shape"/>.</summary>
    private static HostArray Transposed(HostArray w, int[] shape)
    {
        int rows = w.Shape[0], cols = w.Shape[1];
        var k = new float[w.Data.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                k[c * rows + r] = w.Data[r * cols + c];
        return new HostArray(shape, k);
    }

    /// <summary>HF weight (out, in) = kernel.T.</summary>
    private static void Dense(IReadOnlyDictionary<string, HostArray> hf, string s, Dictionary<string, HostArray> o, string d)
    {
        var w = hf[s + ".weight"];
        o[d + "/kernel"] = Transposed(w, [w.Shape[1], w.Shape[0]]);
        o[d + "/bias"] = hf[s + ".bias"];
    }

    private static void Norm(IReadOnlyDictionary<string, HostArray> hf, string s, Dictionary<string, HostArray> o, string d)
    {
        o[d + "/scale"] = hf[s + ".weight"];
        o[d + "/bias"] = hf[s + ".bias"];
    }

    private static HostArray Batch(HostArray a) => new([1, .. a.Shape], a.Data);
}
