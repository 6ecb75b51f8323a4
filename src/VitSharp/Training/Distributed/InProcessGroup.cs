using System.Numerics.Tensors;

namespace VitSharp.Training.Distributed;

/// <summary>
/// N ranks in one process, one thread each (tests, CI): the collectives meet at a <see cref="System.Threading.Barrier"/>
/// and reduce in rank order, so a run is reproducible bit for bit. <see cref="Abort"/> (called by <see cref="RunRanks"/>
/// when a rank throws) releases every rank that waits, with <see cref="OperationCanceledException"/>, instead of a deadlock.
/// </summary>
public sealed class InProcessGroup : IDisposable
{
    private readonly Barrier _barrier;
    private readonly float[]?[] _slots;
    private readonly CancellationTokenSource _abort = new();

    public InProcessGroup(int worldSize)
    {
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize), "a world has at least one rank");
        WorldSize = worldSize;
        _barrier = new Barrier(worldSize);
        _slots = new float[]?[worldSize];
        Ranks = Enumerable.Range(0, worldSize).Select(r => (ICommunicator)new Member(this, r)).ToArray();
    }

    public int WorldSize { get; }
    /// <summary>The communicator of each rank (index = rank); each is used by one thread.</summary>
    public IReadOnlyList<ICommunicator> Ranks { get; }
    /// <summary>Waits longer than this at a collective are an error (a rank that stopped calling them).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(2);

    public void Abort() => _abort.Cancel();

    /// <summary>Runs <paramref name="body"/>(rank, communicator) on one thread per rank and returns the results by rank;
    /// a rank's exception aborts the group and is rethrown (the first one) once every thread has ended.</summary>
    public T[] RunRanks<T>(Func<int, ICommunicator, T> body)
    {
        var results = new T[WorldSize];
        var errors = new Exception?[WorldSize];
        var threads = Enumerable.Range(0, WorldSize).Select(r => new Thread(() =>
        {
            try { results[r] = body(r, Ranks[r]); }
            catch (Exception e) { errors[r] = e; Abort(); }
        }) { IsBackground = true, Name = $"rank {r}" }).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        // The root cause first: a rank's own error rather than another's OperationCanceledException.
        var first = errors.FirstOrDefault(e => e is not null and not OperationCanceledException) ?? errors.FirstOrDefault(e => e is not null);
        if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        return results;
    }

    private void Meet()
    {
        if (!_barrier.SignalAndWait(Timeout, _abort.Token))
            throw new VitSharpException($"in-process group: a rank waited {Timeout.TotalSeconds:0} s at a collective that another rank never reached");
    }

    public void Dispose()
    {
        _barrier.Dispose();
        _abort.Dispose();
    }

    private sealed class Member(InProcessGroup g, int rank) : HostCommunicator
    {
        private float[] _result = [];
        public override int Rank => rank;
        public override int WorldSize => g.WorldSize;
        public override string Kind => "in-process";

        protected override void SumHost(float[] data, int length)
        {
            if (g.WorldSize == 1) return;
            g._slots[rank] = data;
            g.Meet();
            if (_result.Length < length) _result = new float[length];
            var sum = _result.AsSpan(0, length);
            for (int r = 0; r < g.WorldSize; r++)
            {
                var other = g._slots[r]!;
                if (other.Length < length) throw new VitSharpException($"in-process group: rank {r} reduces fewer values than rank {rank} ({length})");
                if (r == 0) other.AsSpan(0, length).CopyTo(sum);
                else TensorPrimitives.Add(sum, other.AsSpan(0, length), sum);
            }
            g.Meet(); // every rank has read every slot
            sum.CopyTo(data);
        }

        protected override void BroadcastHost(float[] data, int length, int root)
        {
            if (g.WorldSize == 1) return;
            if (rank == root) g._slots[root] = data;
            g.Meet();
            if (rank != root) g._slots[root]!.AsSpan(0, length).CopyTo(data);
            g.Meet();
        }

        public override void Barrier() { if (g.WorldSize > 1) g.Meet(); }
    }
}
