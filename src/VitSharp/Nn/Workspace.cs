using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Nn;

/// <summary>
/// Activations of a forward pass, allocated on the backend and released together. A model keeps one across forwards
/// and calls <see cref="Reset"/> at the start of each: tensors of the same shapes are then handed out again instead of
/// being allocated (and zeroed, and page-faulted in) anew. Within a pass, <see cref="Release"/> hands tensors got since a
/// <see cref="Mark"/> back early (an inference block's intermediates serve the next block). Reused tensors hold stale
/// values: callers overwrite them. Not thread-safe.
/// </summary>
public sealed class Workspace(IBackend backend) : IDisposable
{
    private readonly List<Tensor> _owned = new();
    // Released during this pass (asked for, so kept at the next reset) and left over from the previous pass.
    private readonly List<Tensor> _released = new();
    private List<Tensor> _spare = new();

    /// <summary>A tensor in the backend's compute type.</summary>
    public Tensor Get(params int[] shape) => Get(backend.ComputeType, shape);

    /// <summary>A tensor of an explicit dtype (F32 for saved LayerNorm statistics and attention probabilities).</summary>
    public Tensor Get(DType dtype, params int[] shape)
    {
        var tensor = Take(_released, dtype, shape) ?? Take(_spare, dtype, shape) ?? backend.Allocate(shape, dtype);
        _owned.Add(tensor);
        return tensor;
    }

    private static Tensor? Take(List<Tensor> pool, DType dtype, int[] shape)
    {
        int i = pool.FindIndex(t => t.DType == dtype && t.Shape.AsSpan().SequenceEqual(shape));
        if (i < 0) return null;
        var t = pool[i];
        pool.RemoveAt(i);
        return t;
    }

    /// <summary>A position to <see cref="Release"/> back to.</summary>
    public int Mark => _owned.Count;

    /// <summary>Makes the tensors handed out since <paramref name="mark"/> available to <see cref="Get(DType, int[])"/> again in this pass.</summary>
    public void Release(int mark)
    {
        for (int i = mark; i < _owned.Count; i++) _released.Add(_owned[i]);
        _owned.RemoveRange(mark, _owned.Count - mark);
    }

    /// <summary>Makes every tensor handed out so far available to <see cref="Get(DType, int[])"/> again. Spare tensors that were not
    /// asked for since the previous reset are freed, so memory follows the latest shapes (e.g. batch size).</summary>
    public void Reset()
    {
        foreach (var t in _spare) t.Dispose();
        _spare = new List<Tensor>(_owned);
        _spare.AddRange(_released);
        _owned.Clear();
        _released.Clear();
    }

    /// <summary>Frees every tensor; the workspace stays usable and allocates afresh.</summary>
    public void Trim() => Dispose();

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        foreach (var t in _released) t.Dispose();
        foreach (var t in _spare) t.Dispose();
        _owned.Clear();
        _released.Clear();
        _spare.Clear();
    }
}
