using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Text;

namespace VitSharp.Tests.ZeroShot;

/// <summary>A seeded random CLIPModel folder in transformers' layout (config.json, model.safetensors with its names,
/// vocab.json/merges.txt of a small byte-level BPE), for tests that need a whole two-tower model without the
/// reference data.</summary>
public static class TinyTwoTower
{
    public const int Width = 32, Heads = 2, Mlp = 64, Projection = 16, Image = 32, Patch = 8, Context = 77;
    /// <summary>The merges of the tiny vocabulary: "cat", "dog", "photo" become one token each (with &lt;/w&gt;).</summary>
    public static readonly string[] Merges = ["c a", "ca t</w>", "d o", "do g</w>", "p h", "o t", "ph ot", "phot o</w>"];

    public static Dictionary<string, int> Vocab()
    {
        var bytes = ClipTokenizer.ByteChars();
        var v = new Dictionary<string, int>();
        foreach (var t in bytes.Concat(bytes.Select(b => b + "</w>"))) v[t] = v.Count;
        foreach (var m in Merges) v[m.Replace(" ", "")] = v.Count;
        v[ClipTokenizer.StartOfText] = v.Count;
        v[ClipTokenizer.EndOfText] = v.Count;
        return v;
    }

    public static string WriteClip(string dir, int seed = 0, int depth = 2, Action<Dictionary<string, HostArray>>? edit = null, Action<JsonObject>? editConfig = null)
    {
        Directory.CreateDirectory(dir);
        var vocab = Vocab();
        int vocabSize = vocab.Count;
        var rng = new Random(seed);
        HostArray R(params int[] shape)
        {
            var d = new float[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < d.Length; i++) d[i] = (float)(rng.NextDouble() * 2 - 1) * 0.3f;
            return new HostArray(shape, d);
        }
        HostArray Ones(int n) => new([n], Enumerable.Range(0, n).Select(_ => 1f + (float)(rng.NextDouble() - 0.5) * 0.2f).ToArray());
        var w = new Dictionary<string, HostArray>();
        void Layers(string prefix)
        {
            for (int i = 0; i < depth; i++)
            {
                string p = $"{prefix}encoder.layers.{i}.";
                foreach (var ln in new[] { "layer_norm1", "layer_norm2" }) { w[p + ln + ".weight"] = Ones(Width); w[p + ln + ".bias"] = R(Width); }
                foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" }) { w[p + "self_attn." + proj + ".weight"] = R(Width, Width); w[p + "self_attn." + proj + ".bias"] = R(Width); }
                w[p + "mlp.fc1.weight"] = R(Mlp, Width); w[p + "mlp.fc1.bias"] = R(Mlp);
                w[p + "mlp.fc2.weight"] = R(Width, Mlp); w[p + "mlp.fc2.bias"] = R(Width);
            }
        }
        w["text_model.embeddings.token_embedding.weight"] = R(vocabSize, Width);
        w["text_model.embeddings.position_embedding.weight"] = R(Context, Width);
        Layers("text_model.");
        w["text_model.final_layer_norm.weight"] = Ones(Width); w["text_model.final_layer_norm.bias"] = R(Width);
        w["text_projection.weight"] = R(Projection, Width);
        int tokens = (Image / Patch) * (Image / Patch) + 1;
        w["vision_model.embeddings.class_embedding"] = R(Width);
        w["vision_model.embeddings.patch_embedding.weight"] = R(Width, 3, Patch, Patch);
        w["vision_model.embeddings.position_embedding.weight"] = R(tokens, Width);
        w["vision_model.pre_layrnorm.weight"] = Ones(Width); w["vision_model.pre_layrnorm.bias"] = R(Width);
        Layers("vision_model.");
        w["vision_model.post_layernorm.weight"] = Ones(Width); w["vision_model.post_layernorm.bias"] = R(Width);
        w["visual_projection.weight"] = R(Projection, Width);
        w["logit_scale"] = new HostArray([], [2.6592f]);
        edit?.Invoke(w);
        SafeTensors.Write(Path.Combine(dir, "model.safetensors"), w);
        var tower = new JsonObject
        {
            ["hidden_size"] = Width, ["intermediate_size"] = Mlp, ["num_hidden_layers"] = depth, ["num_attention_heads"] = Heads,
            ["hidden_act"] = "quick_gelu", ["layer_norm_eps"] = 1e-5,
        };
        var text = (JsonObject)tower.DeepClone();
        text["vocab_size"] = vocabSize;
        text["max_position_embeddings"] = Context;
        text["eos_token_id"] = vocab[ClipTokenizer.EndOfText];
        var vision = (JsonObject)tower.DeepClone();
        vision["image_size"] = Image;
        vision["patch_size"] = Patch;
        var cfg = new JsonObject { ["model_type"] = "clip", ["projection_dim"] = Projection, ["text_config"] = text, ["vision_config"] = vision };
        editConfig?.Invoke(cfg);
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "vocab.json"), new JsonObject(vocab.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))).ToJsonString());
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n" + string.Join("\n", Merges) + "\n");
        return dir;
    }

    /// <summary>The pieces of the tiny SentencePiece unigram model (after &lt;pad&gt;, &lt;/s&gt;, &lt;unk&gt;): whole words
    /// score higher than their letters.</summary>
    public static readonly string[] Pieces = ["\u2581", "\u2581a", "\u2581photo", "\u2581of", "\u2581cat", "\u2581dog", "a", "c", "d", "f", "g", "h", "o", "p", "t", "s"];

    /// <summary>A serialized SentencePiece ModelProto (unigram, identity normalizer) with <see cref="Pieces"/>.</summary>
    public static byte[] SentencePieceModel()
    {
        var m = new VitSharp.Export.ProtoWriter();
        void Piece(string text, float score, int type)
        {
            var p = new VitSharp.Export.ProtoWriter();
            p.String(1, text);
            p.Float(2, score);
            p.Varint(3, type);
            m.Message(1, p);
        }
        Piece("<pad>", 0, 3);
        Piece("</s>", 0, 3);
        Piece("<unk>", 0, 2);
        foreach (var t in Pieces) Piece(t, t.Length > 2 ? -1f : -5f - t.Length, 1);
        var trainer = new VitSharp.Export.ProtoWriter();
        trainer.Varint(3, 1);    // model_type UNIGRAM
        trainer.Varint(40, 2);   // unk_id
        trainer.Varint(41, -1);  // bos_id
        trainer.Varint(42, 1);   // eos_id
        trainer.Varint(43, 0);   // pad_id
        m.Message(2, trainer);
        var norm = new VitSharp.Export.ProtoWriter();
        norm.String(1, "identity");
        norm.Varint(3, 1);       // add_dummy_prefix
        norm.Varint(4, 1);       // remove_extra_whitespaces
        norm.Varint(5, 1);       // escape_whitespaces
        m.Message(3, norm);
        return m.ToArray();
    }

    public static string WriteSiglip(string dir, int seed = 0, int depth = 2)
    {
        Directory.CreateDirectory(dir);
        int vocabSize = 3 + Pieces.Length, ctx = 64;
        var rng = new Random(seed);
        HostArray R(params int[] shape)
        {
            var d = new float[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < d.Length; i++) d[i] = (float)(rng.NextDouble() * 2 - 1) * 0.3f;
            return new HostArray(shape, d);
        }
        HostArray Ones(int n) => new([n], Enumerable.Range(0, n).Select(_ => 1f + (float)(rng.NextDouble() - 0.5) * 0.2f).ToArray());
        var w = new Dictionary<string, HostArray>();
        void Lin(string p, int o, int i) { w[p + ".weight"] = R(o, i); w[p + ".bias"] = R(o); }
        void Ln(string p) { w[p + ".weight"] = Ones(Width); w[p + ".bias"] = R(Width); }
        void Layers(string prefix)
        {
            for (int i = 0; i < depth; i++)
            {
                string p = $"{prefix}encoder.layers.{i}.";
                Ln(p + "layer_norm1"); Ln(p + "layer_norm2");
                foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" }) Lin(p + "self_attn." + proj, Width, Width);
                Lin(p + "mlp.fc1", Mlp, Width); Lin(p + "mlp.fc2", Width, Mlp);
            }
        }
        w["text_model.embeddings.token_embedding.weight"] = R(vocabSize, Width);
        w["text_model.embeddings.position_embedding.weight"] = R(ctx, Width);
        Layers("text_model.");
        Ln("text_model.final_layer_norm");
        Lin("text_model.head", Width, Width);
        int grid = Image / Patch;
        w["vision_model.embeddings.patch_embedding.weight"] = R(Width, 3, Patch, Patch);
        w["vision_model.embeddings.patch_embedding.bias"] = R(Width);
        w["vision_model.embeddings.position_embedding.weight"] = R(grid * grid, Width);
        Layers("vision_model.");
        Ln("vision_model.post_layernorm");
        w["vision_model.head.probe"] = R(1, 1, Width);
        w["vision_model.head.attention.in_proj_weight"] = R(3 * Width, Width);
        w["vision_model.head.attention.in_proj_bias"] = R(3 * Width);
        Lin("vision_model.head.attention.out_proj", Width, Width);
        Ln("vision_model.head.layernorm");
        Lin("vision_model.head.mlp.fc1", Mlp, Width); Lin("vision_model.head.mlp.fc2", Width, Mlp);
        w["logit_scale"] = new HostArray([1], [MathF.Log(10)]);
        w["logit_bias"] = new HostArray([1], [-2.5f]);
        SafeTensors.Write(Path.Combine(dir, "model.safetensors"), w);
        var tower = new JsonObject
        {
            ["hidden_size"] = Width, ["intermediate_size"] = Mlp, ["num_hidden_layers"] = depth, ["num_attention_heads"] = Heads,
            ["hidden_act"] = "gelu_pytorch_tanh", ["layer_norm_eps"] = 1e-6,
        };
        var text = (JsonObject)tower.DeepClone();
        text["vocab_size"] = vocabSize;
        text["max_position_embeddings"] = ctx;
        var vision = (JsonObject)tower.DeepClone();
        vision["image_size"] = Image;
        vision["patch_size"] = Patch;
        var cfg = new JsonObject { ["model_type"] = "siglip", ["text_config"] = text, ["vision_config"] = vision };
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString());
        File.WriteAllBytes(Path.Combine(dir, "spiece.model"), SentencePieceModel());
        return dir;
    }

    public static string TempDir(string name)
    {
        var d = Path.Combine(Path.GetTempPath(), "vitsharp-zeroshot-" + name + "-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }
}
