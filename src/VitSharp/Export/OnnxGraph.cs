using System.Runtime.InteropServices;

namespace VitSharp.Export;

/// <summary>
/// A small builder for ONNX graphs (IR 8, opset 17): nodes, float/int64 initializers, typed inputs and outputs,
/// serialised with <see cref="ProtoWriter"/>. Field numbers are those of onnx.proto.
/// </summary>
public sealed class OnnxGraph
{
    private const int FloatType = 1, Int64Type = 7;
    private readonly List<ProtoWriter> _nodes = new(), _initializers = new(), _inputs = new(), _outputs = new();
    private int _counter;

    public string Fresh(string hint) => $"{hint}_{_counter++}";

    public string Node(string op, string[] inputs, string? output = null, params (string Name, object Value)[] attributes)
    {
        output ??= Fresh(op);
        var n = new ProtoWriter();
        foreach (var i in inputs) n.String(1, i);
        n.String(2, output);
        n.String(3, output + "_node");
        n.String(4, op);
        foreach (var (name, value) in attributes) n.Message(5, Attribute(name, value));
        _nodes.Add(n);
        return output;
    }

    public string Float(string name, int[] dims, ReadOnlySpan<float> data)
    {
        var t = new ProtoWriter();
        t.PackedInt64(1, dims.Select(d => (long)d));
        t.Varint(2, FloatType);
        t.String(8, name);
        t.Bytes(9, MemoryMarshal.AsBytes(data));
        _initializers.Add(t);
        return name;
    }

    public string Ints(string name, params long[] values)
    {
        var t = new ProtoWriter();
        t.PackedInt64(1, [values.Length]);
        t.Varint(2, Int64Type);
        t.String(8, name);
        t.Bytes(9, MemoryMarshal.AsBytes(values.AsSpan()));
        _initializers.Add(t);
        return name;
    }

    public string Scalar(string name, float value) => Float(name, [], [value]);

    public string ScalarInt(string name, long value)
    {
        var t = new ProtoWriter();
        t.Varint(2, Int64Type);
        t.String(8, name);
        t.Bytes(9, MemoryMarshal.AsBytes(new[] { value }.AsSpan()));
        _initializers.Add(t);
        return name;
    }

    /// <summary>A float input/output; a null dimension is symbolic ("batch").</summary>
    public void Input(string name, params int?[] dims) => _inputs.Add(ValueInfo(name, dims));
    public void Output(string name, params int?[] dims) => _outputs.Add(ValueInfo(name, dims));

    public byte[] ToModel(string producer, string graphName, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var g = new ProtoWriter();
        foreach (var n in _nodes) g.Message(1, n);
        g.String(2, graphName);
        foreach (var i in _initializers) g.Message(5, i);
        foreach (var i in _inputs) g.Message(11, i);
        foreach (var o in _outputs) g.Message(12, o);
        var m = new ProtoWriter();
        m.Varint(1, 8); // IR version 8 (ONNX 1.10+), the version opset 17 pairs with
        m.String(2, producer);
        m.String(3, typeof(OnnxGraph).Assembly.GetName().Version?.ToString() ?? "0");
        m.Message(7, g);
        var opset = new ProtoWriter();
        opset.String(1, "");
        opset.Varint(2, 17);
        m.Message(8, opset);
        foreach (var (k, v) in metadata ?? new Dictionary<string, string>())
        {
            var e = new ProtoWriter();
            e.String(1, k);
            e.String(2, v);
            m.Message(14, e);
        }
        return m.ToArray();
    }

    private static ProtoWriter ValueInfo(string name, int?[] dims)
    {
        var shape = new ProtoWriter();
        foreach (var d in dims)
        {
            var dim = new ProtoWriter();
            if (d is int v) dim.Varint(1, v); else dim.String(2, "batch");
            shape.Message(1, dim);
        }
        var tensor = new ProtoWriter();
        tensor.Varint(1, FloatType);
        tensor.Message(2, shape);
        var type = new ProtoWriter();
        type.Message(1, tensor);
        var vi = new ProtoWriter();
        vi.String(1, name);
        vi.Message(2, type);
        return vi;
    }

    // AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7).
    private static ProtoWriter Attribute(string name, object value)
    {
        var a = new ProtoWriter();
        a.String(1, name);
        switch (value)
        {
            case float f: a.Float(2, f); a.Varint(20, 1); break;
            case int i: a.Varint(3, i); a.Varint(20, 2); break;
            case long l: a.Varint(3, l); a.Varint(20, 2); break;
            case string s: a.String(4, s); a.Varint(20, 3); break;
            case long[] ints: a.PackedInt64(8, ints); a.Varint(20, 7); break;
            default: throw new ArgumentException($"attribute {name}: unsupported type {value.GetType().Name}");
        }
        return a;
    }
}
