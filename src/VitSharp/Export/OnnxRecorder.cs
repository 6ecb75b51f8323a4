using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Export;

/// <summary>
/// A backend whose operations append ONNX nodes (opset 17) instead of computing: running a model's own forward on it
/// records that forward as a graph, so the export has no second copy of the model. Tensors it allocates are symbolic
/// (a shape, no memory); each maps to the graph value last written into it, so in-place updates of the residual stream
/// become a fresh value per op. A tensor that is a parameter of the model becomes an initializer under its timm name
/// (Linear weights stored transposed once, as "&lt;name&gt;_t", so MatMul needs no Transpose node). Only the batch
/// dimension is left symbolic: reshapes copy it (0) rather than naming it.
/// </summary>
public sealed class OnnxRecorder(OnnxGraph graph, ParameterSet parameters, IReadOnlyDictionary<string, HostArray> weights) : IBackend
{
    private readonly Dictionary<Tensor, string> _values = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<string> _initializers = new();

    public Device Device => Device.Cpu;
    public DType ComputeType => DType.F32;

    public Tensor Allocate(int[] shape, DType dtype) => new(shape, dtype, new SymbolicStorage(Shape.Count(shape) * dtype.SizeOf()));

    /// <summary>A graph input: a symbolic tensor of this shape whose value is <paramref name="name"/>.</summary>
    public Tensor Input(string name, int[] shape)
    {
        var t = Allocate(shape, DType.F32);
        _values[t] = name;
        return t;
    }

    /// <summary>The graph value a tensor holds: what an op last wrote into it, or the initializer of a parameter.</summary>
    public string Value(Tensor t)
    {
        if (_values.TryGetValue(t, out var v)) return v;
        if (parameters.TryNameOf(t) is { } name) return Initializer(name, weights[name]);
        throw new InvalidOperationException($"ONNX recording: {t} is read before any op wrote it");
    }

    private string Initializer(string name, HostArray a)
    {
        if (_initializers.Add(name)) graph.Float(name, a.Shape, a.Data);
        return name;
    }

    private string TransposedWeight(Tensor w)
    {
        // A weight may be a 2-D view of a parameter of another rank (vit-pytorch's patch projection: the (D, C, P, P)
        // convolution weight read as a (D, C·P·P) Linear).
        var name = parameters.TryNameOf(w) ?? parameters.TryNameOfView(w) ?? parameters.NameOf(w);
        var a = weights[name];
        if (a.Shape.Length != 2) a = a.Reshape(w.Shape);
        return _initializers.Contains(name + "_t") ? name + "_t" : Initializer(name + "_t", a.Transpose2D());
    }

    private string Scalar(string hint, float value) => graph.Scalar(graph.Fresh(hint), value);

    private string Node(string op, string[] inputs, params (string, object)[] attributes) => graph.Node(op, inputs, null, attributes);

    public void CopyFromHost(ReadOnlySpan<float> src, Tensor dst) =>
        throw new NotSupportedException("ONNX recording: tensors are symbolic (a recorded forward copies no data)");

    public void CopyToHost(Tensor src, Span<float> dst) =>
        throw new NotSupportedException("ONNX recording: tensors are symbolic (a recorded forward copies no data)");

    public void Synchronize() { }

    /// <summary>Symbolic storage holds no data to clear: a zeroed tensor (a fresh parameter set) is read only through
    /// its initializer or after an op writes it.</summary>
    public void Zero(Tensor x) { }

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false)
    {
        var v = Node("MatMul", [Value(x), TransposedWeight(w)]);
        if (bias is not null) v = Node("Add", [v, Value(bias)]);
        v = Act(act, v);
        if (accumulate) v = Node("Add", [Value(y), v]);
        _values[y] = v;
    }

    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y) =>
        _values[y] = Node("LayerNormalization", [Value(x), Value(gamma), Value(beta)], ("axis", -1), ("epsilon", eps));

    public void Add(Tensor a, Tensor b, Tensor y) => _values[y] = Node("Add", [Value(a), Value(b)]);

    public void Apply(Activation act, Tensor x, Tensor y) => _values[y] = Act(act, Value(x));

    private string Act(Activation act, string x)
    {
        switch (act)
        {
            case Activation.None: return x;
            case Activation.Tanh: return Node("Tanh", [x]);
            case Activation.Relu: return Node("Relu", [x]);
            case Activation.Silu: return Node("Mul", [x, Node("Sigmoid", [x])]);
            case Activation.QuickGelu: return Node("Mul", [x, Node("Sigmoid", [Node("Mul", [x, Scalar("quick_gelu", 1.702f)])])]);
            case Activation.GeluTanh:
            {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                var cube = Node("Mul", [Node("Mul", [x, x]), x]);
                var inner = Node("Mul", [Node("Add", [x, Node("Mul", [cube, Scalar("c", 0.044715f)])]), Scalar("k", 0.7978845608f)]);
                var t = Node("Add", [Node("Tanh", [inner]), Scalar("one", 1f)]);
                return Node("Mul", [Node("Mul", [x, t]), Scalar("half", 0.5f)]);
            }
            case Activation.Gelu:
            {
                // 0.5·x·(1 + erf(x/√2))
                var erf = Node("Erf", [Node("Mul", [x, Scalar("rsqrt2", 0.70710678f)])]);
                var one = Node("Add", [erf, Scalar("one", 1f)]);
                return Node("Mul", [Node("Mul", [x, one]), Scalar("half", 0.5f)]);
            }
            default: throw new NotSupportedException($"ONNX recording: activation {act}");
        }
    }

    public void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null)
    {
        int width = qkv.Dim(2) / 3, hd = width / heads;
        // (B, T, 3, H, hd) → (3, B, H, T, hd), then q, k, v by index.
        var split = Node("Transpose", [Node("Reshape", [Value(qkv), graph.Ints(graph.Fresh("qkv_shape"), 0, 0, 3, heads, hd)])],
            ("perm", new long[] { 2, 0, 3, 1, 4 }));
        var q = Node("Gather", [split, graph.ScalarInt(graph.Fresh("i"), 0)], ("axis", 0));
        var k = Node("Gather", [split, graph.ScalarInt(graph.Fresh("i"), 1)], ("axis", 0));
        var v = Node("Gather", [split, graph.ScalarInt(graph.Fresh("i"), 2)], ("axis", 0));
        var scores = Node("Mul", [Node("MatMul", [q, Node("Transpose", [k], ("perm", new long[] { 0, 1, 3, 2 }))]), Scalar("attn_scale", scale)]);
        var weights = Node("Softmax", [scores], ("axis", -1));
        if (probs is not null) _values[probs] = weights;
        var ctx = Node("MatMul", [weights, v]);
        _values[y] = Node("Reshape", [Node("Transpose", [ctx], ("perm", new long[] { 0, 2, 1, 3 })), graph.Ints(graph.Fresh("ctx_shape"), 0, 0, width)]);
    }

    /// <summary>Conv with kernel = stride = P, flattened to (B, Np, D).</summary>
    public void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch)
    {
        var conv = Node("Conv", [Value(images), Value(w), Value(bias)],
            ("kernel_shape", new long[] { patch, patch }), ("strides", new long[] { patch, patch }));
        var flat = Node("Reshape", [conv, graph.Ints(graph.Fresh("shape"), 0, w.Dim(0), -1)]);
        _values[y] = Node("Transpose", [flat], ("perm", new long[] { 0, 2, 1 }));
    }

    // The convolutional tokenizer: Conv/Relu/MaxPool run on NCHW values; the tokens (B, H·W, C) the model sees are a
    // Reshape+Transpose of them. Each channels-last value made so remembers its NCHW source, so the next op reads that
    // directly and the graph has no Transpose pairs between a convolution and its pool.
    private readonly Dictionary<string, string> _nchwOf = new(StringComparer.Ordinal);

    private string Nchw(Tensor x, int h, int w, bool channelsFirst)
    {
        var v = Value(x);
        if (channelsFirst) return v;
        if (_nchwOf.TryGetValue(v, out var spatial)) return spatial;
        var four = Node("Reshape", [v, graph.Ints(graph.Fresh("nhwc_shape"), 0, h, w, x.Dim(-1))]);
        return Node("Transpose", [four], ("perm", new long[] { 0, 3, 1, 2 }));
    }

    private void Tokens(string nchw, int channels, Tensor y)
    {
        var flat = Node("Reshape", [nchw, graph.Ints(graph.Fresh("shape"), 0, channels, -1)]);
        var tokens = Node("Transpose", [flat], ("perm", new long[] { 0, 2, 1 }));
        _nchwOf[tokens] = nchw;
        _values[y] = tokens;
    }

    public void Im2Col3x3(Tensor x, Tensor cols, int height, int width, bool channelsFirst) =>
        throw new NotSupportedException("ONNX recording: a convolution is recorded whole (Conv3x3), not as its unfold");

    /// <summary>Conv (3×3, stride 1, pads 1, no bias) with its activation, as tokens (B, H·W, Cout).</summary>
    public void Conv3x3(Tensor x, Tensor w, Tensor cols, Tensor y, int height, int width, bool channelsFirst, Activation act)
    {
        var conv = Node("Conv", [Nchw(x, height, width, channelsFirst), Value(w)],
            ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 1, 1 }), ("pads", new long[] { 1, 1, 1, 1 }));
        Tokens(Act(act, conv), w.Dim(0), y);
    }

    /// <summary>MaxPool (kernel 3, stride 2, pads 1), as tokens.</summary>
    public void MaxPool3x3s2(Tensor x, Tensor y, int height, int width)
    {
        var pool = Node("MaxPool", [Nchw(x, height, width, false)],
            ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 1, 1 }));
        Tokens(pool, x.Dim(-1), y);
    }

    public void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x)
    {
        var v = Value(patches);
        if (cls is not null)
        {
            // Broadcast the class token to the batch: Expand to (B, 1, D) with B read from the patches' shape.
            var batch = Node("Slice", [Node("Shape", [v]), graph.Ints(graph.Fresh("s"), 0), graph.Ints(graph.Fresh("e"), 1)]);
            var shape = Node("Concat", [batch, graph.Ints(graph.Fresh("rest"), 1, cls.Dim(2))], ("axis", 0));
            v = Node("Concat", [Node("Expand", [Value(cls), shape]), v], ("axis", 1));
        }
        _values[x] = Node("Add", [v, Value(pos)]);
    }

    public void MeanTokens(Tensor x, int start, Tensor y)
    {
        var v = Value(x);
        if (start > 0)
            v = Node("Slice", [v, graph.Ints(graph.Fresh("start"), start), graph.Ints(graph.Fresh("end"), int.MaxValue), graph.Ints(graph.Fresh("axis"), 1)]);
        _values[y] = Node("ReduceMean", [v], ("axes", new long[] { 1 }), ("keepdims", 0));
    }

    public void SelectToken(Tensor x, int index, Tensor y) =>
        _values[y] = Node("Gather", [Value(x), graph.ScalarInt(graph.Fresh("index"), index)], ("axis", 1));

    public void Transpose12(Tensor x, Tensor y) => _values[y] = Node("Transpose", [Value(x)], ("perm", new long[] { 0, 2, 1 }));

    public void EmbedTokens(Tensor patches, IReadOnlyList<Tensor> prefix, Tensor pos, Tensor x)
    {
        var v = Value(patches);
        var batch = Node("Slice", [Node("Shape", [v]), graph.Ints(graph.Fresh("s"), 0), graph.Ints(graph.Fresh("e"), 1)]);
        var parts = prefix.Select(p => Node("Expand", [Value(p),
            Node("Concat", [batch, graph.Ints(graph.Fresh("rest"), p.Dim(1), p.Dim(2))], ("axis", 0))])).Append(v).ToArray();
        _values[x] = Node("Add", [Node("Concat", parts, ("axis", 1)), Value(pos)]);
    }

    public void MulChannels(Tensor x, Tensor gamma, Tensor y) => _values[y] = Node("Mul", [Value(x), Value(gamma)]);

    public void ScaleInto(Tensor x, float s, Tensor y) => _values[y] = Node("Mul", [Value(x), Scalar("scale", s)]);

    public void MaxTokens(Tensor x, int start, Tensor y)
    {
        var v = Value(x);
        if (start > 0)
            v = Node("Slice", [v, graph.Ints(graph.Fresh("start"), start), graph.Ints(graph.Fresh("end"), int.MaxValue), graph.Ints(graph.Fresh("axis"), 1)]);
        _values[y] = Node("ReduceMax", [v], ("axes", new long[] { 1 }), ("keepdims", 0));
    }

    public void UnfoldPatches(Tensor images, Tensor y, int patch)
    {
        int c = images.Dim(1), gh = images.Dim(2) / patch, gw = images.Dim(3) / patch;
        var six = Node("Reshape", [Value(images), graph.Ints(graph.Fresh("patch_shape"), 0, c, gh, patch, gw, patch)]);
        var t = Node("Transpose", [six], ("perm", new long[] { 0, 2, 4, 1, 3, 5 }));
        _values[y] = Node("Reshape", [t, graph.Ints(graph.Fresh("unfold_shape"), 0, gh * gw, c * patch * patch)]);
    }

    /// <summary>qk_norm: q, k and v as (B, N, 1, H, d) slices; LayerNormalization over d on q and k; concatenated back.</summary>
    public void QkNorm(Tensor qkv, int heads, Tensor qGamma, Tensor qBeta, Tensor kGamma, Tensor kBeta, float eps)
    {
        int width = qkv.Dim(-1) / 3, hd = width / heads;
        var five = Node("Reshape", [Value(qkv), graph.Ints(graph.Fresh("qkv_shape"), 0, 0, 3, heads, hd)]);
        string Part(int i) => Node("Slice", [five, graph.Ints(graph.Fresh("start"), i), graph.Ints(graph.Fresh("end"), i + 1), graph.Ints(graph.Fresh("axis"), 2)]);
        var q = Node("LayerNormalization", [Part(0), Value(qGamma), Value(qBeta)], ("axis", -1), ("epsilon", eps));
        var k = Node("LayerNormalization", [Part(1), Value(kGamma), Value(kBeta)], ("axis", -1), ("epsilon", eps));
        var joined = Node("Concat", [q, k, Part(2)], ("axis", 2));
        _values[qkv] = Node("Reshape", [joined, graph.Ints(graph.Fresh("qkv_flat"), 0, 0, 3 * width)]);
    }

    /// <summary>The attention-pool head's attention: queries (1 or B, L, H·d) over kv (B, N, 2, H, d); MatMul broadcasts
    /// a single latent over the batch.</summary>
    public void CrossAttention(Tensor q, Tensor kv, Tensor y, int heads, float scale)
    {
        int width = kv.Dim(2) / 2, hd = width / heads;
        var qh = Node("Transpose", [Node("Reshape", [Value(q), graph.Ints(graph.Fresh("q_shape"), 0, 0, heads, hd)])], ("perm", new long[] { 0, 2, 1, 3 }));
        var split = Node("Transpose", [Node("Reshape", [Value(kv), graph.Ints(graph.Fresh("kv_shape"), 0, 0, 2, heads, hd)])],
            ("perm", new long[] { 2, 0, 3, 1, 4 }));
        var k = Node("Gather", [split, graph.ScalarInt(graph.Fresh("i"), 0)], ("axis", 0));
        var v = Node("Gather", [split, graph.ScalarInt(graph.Fresh("i"), 1)], ("axis", 0));
        var scores = Node("Mul", [Node("MatMul", [qh, Node("Transpose", [k], ("perm", new long[] { 0, 1, 3, 2 }))]), Scalar("pool_scale", scale)]);
        var ctx = Node("MatMul", [Node("Softmax", [scores], ("axis", -1)), v]);
        _values[y] = Node("Reshape", [Node("Transpose", [ctx], ("perm", new long[] { 0, 2, 1, 3 })), graph.Ints(graph.Fresh("ctx_shape"), 0, 0, width)]);
    }

    /// <summary>CCT's sequence pooling: Softmax over the tokens of the (B, N, 1) scores, transposed to (B, 1, N), times the
    /// tokens (B, N, D), reshaped to (B, D).</summary>
    public void SeqPool(Tensor x, Tensor scores, Tensor weights, Tensor y)
    {
        var s = Node("Reshape", [Value(scores), graph.Ints(graph.Fresh("scores_shape"), 0, x.Dim(1), 1)]);
        var w = Node("Softmax", [s], ("axis", 1));
        _values[weights] = Node("Reshape", [w, graph.Ints(graph.Fresh("weights_shape"), 0, x.Dim(1))]);
        var pooled = Node("MatMul", [Node("Transpose", [w], ("perm", new long[] { 0, 2, 1 })), Value(x)]);
        _values[y] = Node("Reshape", [pooled, graph.Ints(graph.Fresh("pooled_shape"), 0, x.Dim(2))]);
    }

    public void Dispose() { }

    private sealed class SymbolicStorage(long bytes) : Storage(Device.Cpu, bytes)
    {
        public override nint Pointer => throw new InvalidOperationException("a symbolic tensor (ONNX recording) has no memory");
        public override void Dispose() { }
    }
}
