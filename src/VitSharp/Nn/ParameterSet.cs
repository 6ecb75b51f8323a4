using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Tensors;

namespace VitSharp.Nn;

/// <summary>
/// All parameters of a model in ONE contiguous buffer on the backend's device, each a named view (llm.c style):
/// one upload, one optimizer sweep, one gradient buffer of the same layout. Names are timm's.
/// </summary>
public sealed class ParameterSet : IDisposable
{
    private readonly Dictionary<string, Tensor> _views = new();
    private readonly Dictionary<Tensor, string> _names = new(ReferenceEqualityComparer.Instance);
    private readonly List<(string Name, int[] Shape, long Offset)> _layout = new();

    public ParameterSet(IBackend backend, IEnumerable<(string Name, int[] Shape)> layout, DType? dtype = null)
    {
        Backend = backend;
        long total = 0, elements = 0;
        foreach (var (name, shape) in layout)
        {
            _layout.Add((name, shape, total));
            long n = Shape.Count(shape);
            elements += n;
            // Every parameter starts on a 64-byte boundary (16 floats): aligned vector loads on the CPU and the
            // 16-byte operand alignment cuBLASLt wants, for bf16 too. The gaps stay zero.
            total += (n + Alignment - 1) / Alignment * Alignment;
        }
        Count = total;
        ElementCount = elements;
        Buffer = backend.Allocate([checked((int)Math.Max(total, 1))], dtype ?? backend.ComputeType);
        if (Buffer.Storage is not HostStorage) backend.Zero(Buffer); // host storage is zeroed, and its untouched pages cost nothing
        foreach (var (name, shape, offset) in _layout) _names[_views[name] = Buffer.View(shape, offset)] = name;
    }

    public IBackend Backend { get; }
    public Tensor Buffer { get; }
    /// <summary>Elements in the buffer, alignment gaps included.</summary>
    public long Count { get; }
    /// <summary>Parameters proper: the sum of every parameter's element count.</summary>
    public long ElementCount { get; }
    public const int Alignment = 16;
    public IEnumerable<string> Names => _layout.Select(l => l.Name);
    public IReadOnlyList<(string Name, int[] Shape, long Offset)> Layout => _layout;

    public Tensor this[string name] =>
        _views.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"model has no parameter '{name}'");

    public bool Contains(string name) => _views.ContainsKey(name);

    /// <summary>The name of one of this set's views (the tensor <see cref="this[string]"/> returned), or null.</summary>
    public string? TryNameOf(Tensor view) => _names.GetValueOrDefault(view);

    /// <summary>The name of the parameter whose elements another view (of another shape) covers exactly, or null.</summary>
    public string? TryNameOfView(Tensor view)
    {
        if (!ReferenceEquals(view.Storage, Buffer.Storage)) return null;
        foreach (var (name, shape, offset) in _layout)
            if (Buffer.Offset + offset == view.Offset && Shape.Count(shape) == view.Length) return name;
        return null;
    }

    public string NameOf(Tensor view) => TryNameOf(view) ?? throw new ArgumentException($"{view} is not a parameter of this set");

    /// <summary>Copies every parameter from <paramref name="weights"/>; each must exist with exactly the declared shape.
    /// Those <paramref name="defer"/> names are checked but not written: their values stay in <paramref name="weights"/>
    /// (e.g. a mapped file) for a caller that keeps another copy the products read (a packed or int8 one), their
    /// memory in the buffer untouched; <see cref="ToHost"/> and <see cref="DeferredValues"/> read them from there, and
    /// <see cref="Materialize"/> writes them in.</summary>
    public void Load(IReadOnlyDictionary<string, HostArray> weights, string source, Func<string, bool>? defer = null)
    {
        foreach (var (name, shape, _) in _layout)
        {
            if (!weights.TryGetValue(name, out var a))
                throw new CheckpointException(source, "missing from the checkpoint", name);
            if (!a.Shape.SequenceEqual(shape))
                throw new CheckpointException(source, $"has shape {a} but the model needs {Shape.Format(shape)}", name);
        }
        // Strict, like PyTorch's load_state_dict: a tensor the model does not use means a variant it does not implement,
        // and ignoring it would silently compute something else.
        var unused = weights.Keys.Where(k => !_views.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        if (unused.Count > 0)
            throw new CheckpointException(source, $"holds {unused.Count} tensor(s) this model does not use ({string.Join(", ", unused.Take(6))}" +
                $"{(unused.Count > 6 ? ", …" : "")}): an architecture variant VitSharp does not implement, or options that do not match the checkpoint");
        _deferred.Clear();
        bool host = Buffer.Device.IsCpu && Buffer.DType == DType.F32;
        var staging = host ? null : new float[Count];
        foreach (var (name, _, offset) in _layout)
        {
            var a = weights[name];
            if (host && defer?.Invoke(name) == true) { _deferred[name] = a; continue; }
            // straight into the buffer (host) or one staging copy (a device): no intermediate arrays
            if (host) a.CopyTo(_views[name].Span);
            else a.CopyTo(staging.AsSpan(checked((int)offset), checked((int)a.Count)));
        }
        if (staging is not null) Backend.CopyFromHost(staging, Buffer.View([checked((int)Count)], 0));
    }

    private readonly Dictionary<string, HostArray> _deferred = new(StringComparer.Ordinal);

    /// <summary>The values of a parameter <see cref="Load"/> deferred (not in the buffer), or null when it is in the buffer.</summary>
    public HostArray? DeferredValues(string name) => _deferred.GetValueOrDefault(name);

    /// <summary>The parameters whose values are not in the buffer.</summary>
    public IReadOnlyCollection<string> Deferred => _deferred.Keys;

    /// <summary>Writes a deferred parameter's values into the buffer (before anything reads its memory directly).</summary>
    public void Materialize(string name)
    {
        if (!_deferred.Remove(name, out var a)) return;
        if (Buffer.Device.IsCpu && Buffer.DType == DType.F32) a.CopyTo(_views[name].Span);
        else
        {
            var host = new float[a.Count];
            a.CopyTo(host);
            Backend.CopyFromHost(host, _views[name]);
        }
    }

    /// <summary>The parameters as named host arrays (canonical names).</summary>
    public Dictionary<string, HostArray> ToHost()
    {
        var host = new float[Count];
        Backend.CopyToHost(Buffer.View([checked((int)Count)], 0), host);
        var d = new Dictionary<string, HostArray>();
        foreach (var (name, shape, offset) in _layout)
        {
            var values = host.AsSpan((int)offset, (int)Shape.Count(shape));
            if (_deferred.TryGetValue(name, out var a)) a.CopyTo(values);
            d[name] = new HostArray(shape, values.ToArray());
        }
        return d;
    }

    public void Dispose() => Buffer.Dispose();
}
