using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Nn;

/// <summary>Activations of one forward pass: allocated on the backend, released together.</summary>
public sealed class Workspace(IBackend backend) : IDisposable
{
    private readonly List<Tensor> _owned = new();

    public Tensor Get(params int[] shape)
    {
        var t = backend.Allocate(shape, backend.ComputeType);
        _owned.Add(t);
        return t;
    }

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }
}
