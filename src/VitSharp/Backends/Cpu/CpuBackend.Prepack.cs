using System.Collections.Concurrent;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cpu;

/// <summary>Packed copies of inference weights, looked up by the weight's address and (out, in) shape.</summary>
public sealed unsafe partial class CpuBackend : IWeightPrepacking
{
    private readonly ConcurrentDictionary<(nint Ptr, int Out, int In), PackedB> _packed = new();

    public void Prepack(Tensor weight)
    {
        var key = Key(weight);
        if (_packed.TryGetValue(key, out var old) && (old.IsCurrent || old.Sole)) return;
        var p = PackedB.Create(true, key.Out, key.In, weight.Data, key.In);
        if (_packed.TryRemove(key, out old)) old.Dispose();
        _packed[key] = p;
    }

    /// <summary>Packs <paramref name="values"/> (e.g. a mapped checkpoint's pages) as this weight's copy without writing
    /// them into the weight's memory: products against it use the packed copy only, whatever the GEMM's settings.</summary>
    public void Prepack(Tensor weight, ReadOnlySpan<float> values)
    {
        var key = Key(weight);
        if (values.Length != weight.Length) throw new ArgumentException($"Prepack: {values.Length} values for {weight}");
        PackedB p;
        fixed (float* v = values) p = PackedB.Create(true, key.Out, key.In, v, key.In);
        p.Sole = true;
        if (_packed.TryRemove(key, out var old)) old.Dispose();
        _packed[key] = p;
    }

    public void Release(Tensor weight)
    {
        if (_packed.TryRemove(Key(weight), out var p)) p.Dispose();
    }

    /// <summary>The packed copy of w (out, in) if one was made for this memory and is still in the GEMM's layout.</summary>
    private PackedB? PackedFor(Tensor w, int n, int k)
    {
        if (_packed.IsEmpty || !_packed.TryGetValue((w.Pointer, n, k), out var p) || !(p.IsCurrent || p.Sole)) return null;
        return p;
    }

    private static (nint Ptr, int Out, int In) Key(Tensor w)
    {
        Check.Host(w);
        if (w.Rank < 2) throw new ArgumentException($"Prepack: {w} is not a weight matrix");
        return (w.Pointer, w.Dim(0), checked((int)(w.Length / w.Dim(0))));
    }
}
