using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Nn;

/// <summary>
/// The drop-path masks of a recorded (graph-replayed) training step. While the step is recorded, each site that would
/// draw a mask gets a fixed slice of one device buffer instead, and the plan notes its batch size and rate in forward
/// order. Before each replay, <see cref="Draw"/> makes exactly the draws an eager pass makes with the same RNG (per site,
/// per sample: keep/(1−p) or 0) and uploads them in one copy, so a replayed step computes what the eager step computes.
/// Element-wise dropout has no plan: a step with dropout runs eagerly.
/// </summary>
public sealed class MaskPlan : IDisposable
{
    private readonly IBackend _be;
    private readonly Tensor _arena;
    private readonly float[] _host;
    private readonly List<(int Batch, float Rate)> _sites = new();
    private int _used;

    public MaskPlan(IBackend be, int capacity)
    {
        _be = be;
        _arena = be.Allocate([capacity], DType.F32);
        _host = new float[capacity];
    }

    /// <summary>The sites recorded so far (one per drop-path mask of the step).</summary>
    public int Sites => _sites.Count;

    /// <summary>A mask slot for a drop-path site of <paramref name="batch"/> samples at <paramref name="rate"/>.</summary>
    internal Tensor Site(int batch, float rate)
    {
        if (_used + batch > _host.Length)
            throw new InvalidOperationException($"mask plan full: {_host.Length} floats hold {_sites.Count} sites");
        var slot = _arena.View([batch], _used);
        _sites.Add((batch, rate));
        _used += batch;
        return slot;
    }

    /// <summary>Draws every site's mask from <paramref name="rng"/> as the eager pass would (null: no masks, all ones) and
    /// uploads them.</summary>
    public void Draw(Random? rng)
    {
        int at = 0;
        foreach (var (batch, rate) in _sites)
            for (int b = 0; b < batch; b++)
                _host[at++] = rng is null ? 1f : Pass.DropPathFactor(rng, rate);
        if (_used > 0) _be.CopyFromHost(_host.AsSpan(0, _used), _arena.View([_used], 0));
    }

    public void Dispose() => _arena.Dispose();
}
