using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Training.Distributed;

/// <summary>How <see cref="ICommunicator.AllReduce"/> combines the ranks' buffers.</summary>
public enum ReduceOp
{
    /// <summary>The elementwise sum over the ranks.</summary>
    Sum,
    /// <summary>The elementwise sum over the ranks times 1/world size (data-parallel gradient averaging).</summary>
    Average,
}

/// <summary>
/// A group of ranks that train one model together (data parallel): collectives over F32 tensors of the rank's backend.
/// Every rank calls the same collectives in the same order with buffers of the same length (as with NCCL or
/// torch.distributed); a rank that calls something else deadlocks the group or gets an error, never a wrong result.
/// Results are the same on every rank, bit for bit, and the same from run to run (fixed reduction order).
/// </summary>
public interface ICommunicator : IDisposable
{
    int Rank { get; }
    int WorldSize { get; }
    /// <summary>What carries the collectives (single, in-process, tcp, nccl): for logs and errors.</summary>
    string Kind { get; }

    /// <summary>In place: every rank's <paramref name="buffer"/> becomes the reduction of all ranks' buffers.</summary>
    void AllReduce(ITrainingBackend be, Tensor buffer, ReduceOp op);

    /// <summary>In place: every rank's <paramref name="buffer"/> becomes <paramref name="root"/>'s.</summary>
    void Broadcast(ITrainingBackend be, Tensor buffer, int root);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();
}

/// <summary>The world of one rank: every collective is the identity and costs nothing. The trainer's default; a run with it
/// is exactly a run without data parallelism (the trainer does not even call it).</summary>
public sealed class SingleRank : ICommunicator
{
    public static readonly SingleRank Instance = new();
    public int Rank => 0;
    public int WorldSize => 1;
    public string Kind => "single";
    public void AllReduce(ITrainingBackend be, Tensor buffer, ReduceOp op) { }
    public void Broadcast(ITrainingBackend be, Tensor buffer, int root) { }
    public void Barrier() { }
    public void Dispose() { }
}

/// <summary>
/// A communicator whose collectives run on host arrays: a device tensor is copied to the host, reduced there and copied
/// back (on the CPU backend that is a memcpy). The reduction order is fixed: rank 0's values, plus rank 1's, …, plus rank
/// N−1's, in fp32, then (average) times 1/N; every rank gets the same bits.
/// </summary>
public abstract class HostCommunicator : ICommunicator
{
    private float[] _scratch = [];

    public abstract int Rank { get; }
    public abstract int WorldSize { get; }
    public abstract string Kind { get; }

    /// <summary>In place over data[0..length): the rank-ordered fp32 sum of every rank's values.</summary>
    protected abstract void SumHost(float[] data, int length);

    /// <summary>In place over data[0..length): <paramref name="root"/>'s values.</summary>
    protected abstract void BroadcastHost(float[] data, int length, int root);

    public abstract void Barrier();

    public void AllReduce(ITrainingBackend be, Tensor buffer, ReduceOp op)
    {
        Check(buffer);
        int n = checked((int)buffer.Length);
        var host = Scratch(n);
        be.CopyToHost(buffer, host.AsSpan(0, n));
        SumHost(host, n);
        if (op == ReduceOp.Average && WorldSize > 1)
            System.Numerics.Tensors.TensorPrimitives.Multiply(host.AsSpan(0, n), 1f / WorldSize, host.AsSpan(0, n));
        be.CopyFromHost(host.AsSpan(0, n), buffer);
    }

    public void Broadcast(ITrainingBackend be, Tensor buffer, int root)
    {
        Check(buffer);
        if (root < 0 || root >= WorldSize) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} is not a rank of a world of {WorldSize}");
        int n = checked((int)buffer.Length);
        var host = Scratch(n);
        if (Rank == root) be.CopyToHost(buffer, host.AsSpan(0, n));
        BroadcastHost(host, n, root);
        if (Rank != root) be.CopyFromHost(host.AsSpan(0, n), buffer);
    }

    private float[] Scratch(int n)
    {
        if (_scratch.Length < n) _scratch = new float[n];
        return _scratch;
    }

    private static void Check(Tensor t)
    {
        if (t.DType != DType.F32) throw new ArgumentException($"collectives take F32 tensors, not {t.DType}");
    }

    public virtual void Dispose() { }
}
