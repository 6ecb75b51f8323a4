using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Models;

namespace VitSharp.Export;

/// <summary>
/// Exports a ViT or MLP-Mixer to ONNX (opset 17, float32, dynamic batch): the same computation as the model's forward,
/// in standard operators (Conv, LayerNormalization, MatMul, Softmax, Erf), so any ONNX runtime can run it.
/// Output "logits" (B, classes), or "features" (B, F) for a model without a head.
/// </summary>
public static class OnnxExporter
{
    public static void Export(VisionModel model, string path) =>
        AtomicFile.Write(path, s => s.Write(Build(model.Config, model.Parameters.ToHost())));

    public static byte[] Build(ModelConfig config, IReadOnlyDictionary<string, HostArray> w)
    {
        var g = new OnnxGraph();
        var e = new Emitter(g, w, config);
        g.Input("pixel_values", null, config.InChannels, config.ImageSize, config.ImageSize);
        string features = config switch
        {
            VitConfig v => e.Vit(v),
            MixerConfig m => e.Mixer(m),
            _ => throw new ArgumentException("unknown model"),
        };
        string output = config.NumClasses > 0 ? "logits" : "features";
        if (config.NumClasses > 0) e.Linear(features, "head", output);
        else g.Node("Identity", [features], output);
        g.Output(output, null, config.NumClasses > 0 ? config.NumClasses : (config as VitConfig)?.FeatureDim ?? config.EmbedDim);
        return g.ToModel("VitSharp", config.Architecture,
            new Dictionary<string, string> { [Checkpoint.ConfigMetadataKey] = config.ToJson().ToJsonString() });
    }

    private sealed class Emitter(OnnxGraph g, IReadOnlyDictionary<string, HostArray> w, ModelConfig c)
    {
        private HostArray W(string name) => w.TryGetValue(name, out var a) ? a : throw new VitSharpException($"export: model has no '{name}'");
        private string Param(string name) => g.Float(name, W(name).Shape, W(name).Data);

        /// <summary>x·Wᵀ + b with W stored transposed once, as (in, out), so MatMul needs no Transpose node.</summary>
        public string Linear(string x, string prefix, string? output = null)
        {
            var wt = W(prefix + ".weight").Transpose2D();
            var mm = g.Node("MatMul", [x, g.Float(prefix + ".weight_t", wt.Shape, wt.Data)]);
            return w.ContainsKey(prefix + ".bias") ? g.Node("Add", [mm, Param(prefix + ".bias")], output) : g.Node("Identity", [mm], output);
        }

        public string Norm(string x, string prefix) =>
            g.Node("LayerNormalization", [x, Param(prefix + ".weight"), Param(prefix + ".bias")], null, ("axis", -1), ("epsilon", c.LayerNormEps));

        public string Gelu(string x)
        {
            if (c.Gelu == Activation.GeluTanh)
            {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                var cube = g.Node("Mul", [g.Node("Mul", [x, x]), x]);
                var inner = g.Node("Mul", [g.Node("Add", [x, g.Node("Mul", [cube, g.Scalar(g.Fresh("c"), 0.044715f)])]), g.Scalar(g.Fresh("k"), 0.7978845608f)]);
                var t = g.Node("Add", [g.Node("Tanh", [inner]), g.Scalar(g.Fresh("one"), 1f)]);
                return g.Node("Mul", [g.Node("Mul", [x, t]), g.Scalar(g.Fresh("half"), 0.5f)]);
            }
            var erf = g.Node("Erf", [g.Node("Mul", [x, g.Scalar(g.Fresh("rsqrt2"), 0.70710678f)])]);
            var one = g.Node("Add", [erf, g.Scalar(g.Fresh("one"), 1f)]);
            return g.Node("Mul", [g.Node("Mul", [x, one]), g.Scalar(g.Fresh("half"), 0.5f)]);
        }

        private string Mlp(string x, string prefix) => Linear(Gelu(Linear(x, prefix + ".fc1")), prefix + ".fc2");

        /// <summary>Conv with kernel = stride = P, flattened to (B, Np, D).</summary>
        private string Patches(string prefix)
        {
            var conv = g.Node("Conv", ["pixel_values", Param(prefix + ".weight"), Param(prefix + ".bias")], null,
                ("kernel_shape", new long[] { c.PatchSize, c.PatchSize }), ("strides", new long[] { c.PatchSize, c.PatchSize }));
            var flat = g.Node("Reshape", [conv, g.Ints(g.Fresh("shape"), 0, c.EmbedDim, -1)]);
            return g.Node("Transpose", [flat], null, ("perm", new long[] { 0, 2, 1 }));
        }

        public string Vit(VitConfig v)
        {
            int d = v.EmbedDim, h = v.NumHeads, hd = v.HeadDim;
            var x = Patches("patch_embed.proj");
            if (v.ClassToken)
            {
                // Broadcast the class token to the batch: Expand to (B, 1, D) with B read from the input's shape.
                var batch = g.Node("Slice", [g.Node("Shape", ["pixel_values"]), g.Ints(g.Fresh("s"), 0), g.Ints(g.Fresh("e"), 1)]);
                var shape = g.Node("Concat", [batch, g.Ints(g.Fresh("rest"), 1, d)], null, ("axis", 0));
                var cls = g.Node("Expand", [Param("cls_token"), shape]);
                x = g.Node("Concat", [cls, x], null, ("axis", 1));
            }
            x = g.Node("Add", [x, Param("pos_embed")]);
            var scale = g.Scalar("attn_scale", 1f / MathF.Sqrt(hd));
            for (int i = 0; i < v.Depth; i++)
            {
                var p = $"blocks.{i}";
                var qkv = Linear(Norm(x, p + ".norm1"), p + ".attn.qkv");
                // (B, T, 3, H, hd) → (3, B, H, T, hd), then q, k, v by index.
                var split = g.Node("Transpose", [g.Node("Reshape", [qkv, g.Ints(g.Fresh("qkv_shape"), 0, 0, 3, h, hd)])], null,
                    ("perm", new long[] { 2, 0, 3, 1, 4 }));
                var q = g.Node("Gather", [split, g.ScalarInt(g.Fresh("i"), 0)], null, ("axis", 0));
                var k = g.Node("Gather", [split, g.ScalarInt(g.Fresh("i"), 1)], null, ("axis", 0));
                var val = g.Node("Gather", [split, g.ScalarInt(g.Fresh("i"), 2)], null, ("axis", 0));
                var scores = g.Node("Mul", [g.Node("MatMul", [q, g.Node("Transpose", [k], null, ("perm", new long[] { 0, 1, 3, 2 }))]), scale]);
                var ctx = g.Node("MatMul", [g.Node("Softmax", [scores], null, ("axis", -1)), val]);
                var merged = g.Node("Reshape", [g.Node("Transpose", [ctx], null, ("perm", new long[] { 0, 2, 1, 3 })), g.Ints(g.Fresh("ctx_shape"), 0, 0, d)]);
                x = g.Node("Add", [x, Linear(merged, p + ".attn.proj")]);
                x = g.Node("Add", [x, Mlp(Norm(x, p + ".norm2"), p + ".mlp")]);
            }
            var tokens = v.FcNorm ? x : Norm(x, "norm");
            string pooled = v.Pool == Pooling.Token
                ? g.Node("Gather", [tokens, g.ScalarInt("cls_index", 0)], null, ("axis", 1))
                : g.Node("ReduceMean", [g.Node("Slice", [tokens, g.Ints("patch_start", v.PrefixTokens), g.Ints("patch_end", int.MaxValue), g.Ints("token_axis", 1)])],
                    null, ("axes", new long[] { 1 }), ("keepdims", 0));
            if (v.FcNorm) pooled = Norm(pooled, "fc_norm");
            if (v.RepresentationSize > 0) pooled = g.Node("Tanh", [Linear(pooled, "pre_logits.fc")]);
            return pooled;
        }

        public string Mixer(MixerConfig m)
        {
            var x = Patches("stem.proj");
            for (int i = 0; i < m.Depth; i++)
            {
                var p = $"blocks.{i}";
                var t = g.Node("Transpose", [Norm(x, p + ".norm1")], null, ("perm", new long[] { 0, 2, 1 }));
                var mixed = g.Node("Transpose", [Mlp(t, p + ".mlp_tokens")], null, ("perm", new long[] { 0, 2, 1 }));
                x = g.Node("Add", [x, mixed]);
                x = g.Node("Add", [x, Mlp(Norm(x, p + ".norm2"), p + ".mlp_channels")]);
            }
            return g.Node("ReduceMean", [Norm(x, "norm")], null, ("axes", new long[] { 1 }), ("keepdims", 0));
        }
    }
}
