using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Training.Distributed;

/// <summary>
/// AdamW with its moments sharded over the ranks (ZeRO stage 1, as PyTorch's ZeroRedundancyOptimizer): the flat
/// parameter buffer is cut into <see cref="ICommunicator.WorldSize"/> contiguous shards (boundaries on the parameter
/// set's 16-element alignment); each rank keeps exp_avg/exp_avg_sq for its shard only (1/N of the memory), steps its
/// shard of the (already all-reduced) gradients and weights, then every shard is broadcast from its owner so all ranks
/// hold the whole updated weights. AdamW is elementwise, so the weights are those of the unsharded optimizer.
/// <see cref="State"/> gathers the full moments (a collective: every rank calls it; rank 0 writes them), and
/// <see cref="LoadState"/> takes this rank's shard of a full state, so a checkpoint resumes on any world size.
/// </summary>
public sealed class Zero1AdamW : Optimizer
{
    private readonly ICommunicator _comm;
    private readonly (long Lo, long Hi)[] _shards;
    private readonly List<(long Offset, int Length, bool Decay)> _local = new();
    private readonly Tensor? _m, _v;
    private readonly ParameterSet _layout;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float Eps { get; init; } = 1e-8f;
    public float WeightDecay { get; init; } = 0.05f;

    public Zero1AdamW(ParameterSet parameters, ParameterSet grads, ICommunicator comm, bool excludeFromDecay = true)
        : base(parameters, grads, excludeFromDecay)
    {
        _comm = comm;
        _layout = parameters;
        _shards = Shards(Params.Count, comm.WorldSize);
        var (lo, hi) = _shards[comm.Rank];
        foreach (var (off, len, decay) in Runs)
        {
            long a = Math.Max(off, lo), b = Math.Min(off + len, hi);
            if (a < b) _local.Add((a - lo, checked((int)(b - a)), decay));
        }
        if (hi > lo)
        {
            _m = Be.Allocate([checked((int)(hi - lo))], DType.F32);
            _v = Be.Allocate([checked((int)(hi - lo))], DType.F32);
            Be.Zero(_m);
            Be.Zero(_v);
        }
    }

    /// <summary>The [lo, hi) element range of each rank's shard of a buffer of <paramref name="count"/> elements.</summary>
    public static (long Lo, long Hi)[] Shards(long count, int world)
    {
        const int align = ParameterSet.Alignment;
        long per = (count + world - 1) / world;
        per = (per + align - 1) / align * align;
        return Enumerable.Range(0, world).Select(r => (Math.Min(r * per, count), Math.Min((r + 1) * per, count))).ToArray();
    }

    /// <summary>This rank's shard of the flat parameter buffer.</summary>
    public (long Lo, long Hi) Shard => _shards[_comm.Rank];

    public override void Update(float lr)
    {
        Step++;
        var (lo, hi) = Shard;
        if (_m is not null)
        {
            int n = checked((int)(hi - lo));
            Be.AdamWStepRuns(Params.Buffer.View([n], lo), Grads.Buffer.View([n], lo), _m, _v!, _local,
                new AdamWArgs(lr, Beta1, Beta2, Eps, WeightDecay, Step));
        }
        Gather(Params.Buffer);
        SyncModel();
    }

    /// <summary>Every shard of <paramref name="full"/> from its owner to every rank.</summary>
    private void Gather(Tensor full)
    {
        for (int r = 0; r < _shards.Length; r++)
        {
            var (a, b) = _shards[r];
            if (b > a) _comm.Broadcast(Be, full.View([checked((int)(b - a))], a), r);
        }
    }

    public override Dictionary<string, HostArray> State()
    {
        var d = new Dictionary<string, HostArray>();
        using (var m = Full(_m)) AddState(d, "adamw.exp_avg", m);
        using (var v = Full(_v)) AddState(d, "adamw.exp_avg_sq", v);
        return d;
    }

    // The whole moment buffer, gathered from the shards (a temporary of the parameters' layout).
    private ParameterSet Full(Tensor? shard)
    {
        var full = StateLike(_layout);
        var (lo, hi) = Shard;
        if (shard is not null) Be.Copy(shard, full.Buffer.View([checked((int)(hi - lo))], lo));
        Gather(full.Buffer);
        return full;
    }

    public override void LoadState(IReadOnlyDictionary<string, HostArray> state, long step, string source)
    {
        foreach (var (kind, shard) in new[] { ("adamw.exp_avg", _m), ("adamw.exp_avg_sq", _v) })
        {
            using var full = StateLike(_layout);
            LoadInto(full, kind, state, source);
            var (lo, hi) = Shard;
            if (shard is not null) Be.Copy(full.Buffer.View([checked((int)(hi - lo))], lo), shard);
        }
        Step = step;
    }

    public override void Dispose() { _m?.Dispose(); _v?.Dispose(); Master?.Dispose(); }
}
