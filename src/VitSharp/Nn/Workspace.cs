using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Nn;

/// <summary>
/// Activations of a forward pass, allocated on the backend and released together. A model keeps one across forwards
/// and calls <see cref="Reset"/> at the start of each: tensors of the same shapes are then handed out again instead of
/// being allocated (and zeroed, and page-faulted in) anew. Reused tensors hold stale values: callers overwrite them.
/// Not thread-safe.
/// </summary>
public sealed class Workspace(IBackend backend) : IDisposable
{
    private readonly List<Tensor> _owned = new();
    private List<Tensor> _spare = new();

    public Tensor Get(params int[] shape)
    {
        int i = _spare.FindIndex(t => t.Shape.AsSpan().SequenceEqual(shape));
        Tensor tensor;
        if (i >= 0) { tensor = _spare[i]; _spare.RemoveAt(i); }
        else tensor = backend.Allocate(shape, backend.ComputeType);
        _owned.Add(tensor);
        return tensor;
    }

    /// <summary>Makes every tensor handed out so far available to <see cref="Get"/> again. Spare tensors that were not
    /// asked for since the previous reset are freed, so memory follows the latest shapes (e.g. batch size).</summary>
    public void Reset()
    {
        foreach (var t in _spare) t.Dispose();
        _spare = new List<Tensor>(_owned);
        _owned.Clear();
    }

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        foreach (var t in _spare) t.Dispose();
        _owned.Clear();
        _spare.Clear();
    }
}
