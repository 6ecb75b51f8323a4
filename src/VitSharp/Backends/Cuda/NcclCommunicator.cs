using VitSharp.Backends.Cuda.Native;
using VitSharp.Tensors;
using VitSharp.Training.Distributed;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// Collectives over NCCL on the CUDA backend's own stream (so they queue after the backward's kernels, without a host
/// wait). The unique id travels over <see cref="TcpRendezvous"/>. Written but not yet run on a GPU: the device check
/// is bench/peers/gpu_ddp_check.sh (to be written), see docs/TRAINING.md, Multi-GPU.
/// </summary>
public sealed unsafe class NcclCommunicator : ICommunicator
{
    private nint _comm;
    private readonly CudaBackend _be;

    private NcclCommunicator(CudaBackend be, int rank, int world, byte[] id)
    {
        _be = be;
        Rank = rank;
        WorldSize = world;
        be.Context.MakeCurrent();
        NcclUniqueId uid;
        for (int i = 0; i < TcpRendezvous.IdBytes; i++) uid.Bytes[i] = id[i];
        nint comm;
        Nccl.Check(Nccl.ncclCommInitRank(&comm, world, uid, rank), "ncclCommInitRank");
        _comm = comm;
    }

    /// <summary>Joins the job: the rendezvous (rank 0 makes the NCCL id), then ncclCommInitRank on <paramref name="be"/>'s GPU.</summary>
    public static NcclCommunicator Create(CudaBackend be, int rank, int world, string masterAddr, int port, TimeSpan timeout)
    {
        Nccl.EnsureLoaded();
        var id = TcpRendezvous.Exchange(rank, world, masterAddr, port, () =>
        {
            NcclUniqueId u;
            Nccl.Check(Nccl.ncclGetUniqueId(&u), "ncclGetUniqueId");
            var b = new byte[TcpRendezvous.IdBytes];
            for (int i = 0; i < b.Length; i++) b[i] = u.Bytes[i];
            return b;
        }, timeout);
        return new NcclCommunicator(be, rank, world, id);
    }

    /// <summary>True when libnccl loads; otherwise <paramref name="reason"/> is the one-line error (where it looked).</summary>
    public static bool IsAvailable(out string reason)
    {
        try { Nccl.EnsureLoaded(); reason = ""; return true; }
        catch (CudaUnavailableException e) { reason = e.Message; return false; }
    }

    /// <summary>NCCL's version code (22803 for 2.28.3).</summary>
    public static int Version() => Nccl.Version();

    public int Rank { get; }
    public int WorldSize { get; }
    public string Kind => "nccl";

    public void AllReduce(ITrainingBackend be, Tensor buffer, ReduceOp op)
    {
        Check(be, buffer);
        Nccl.Check(Nccl.ncclAllReduce(buffer.Pointer, buffer.Pointer, (nuint)buffer.Length, Nccl.Float32, op == ReduceOp.Average ? Nccl.Avg : Nccl.Sum,
            _comm, _be.Context.Stream), "ncclAllReduce");
    }

    public void Broadcast(ITrainingBackend be, Tensor buffer, int root)
    {
        Check(be, buffer);
        Nccl.Check(Nccl.ncclBroadcast(buffer.Pointer, buffer.Pointer, (nuint)buffer.Length, Nccl.Float32, root, _comm, _be.Context.Stream), "ncclBroadcast");
    }

    public void Barrier()
    {
        // An all-reduce of one float, waited for: every rank has reached it.
        using var t = _be.Allocate([1], DType.F32);
        _be.Zero(t);
        AllReduce(_be, t, ReduceOp.Sum);
        _be.Synchronize();
    }

    private void Check(ITrainingBackend be, Tensor t)
    {
        if (!ReferenceEquals(be, _be)) throw new ArgumentException("an NCCL communicator runs on the backend it was created with");
        if (t.DType != DType.F32) throw new ArgumentException($"collectives take F32 tensors, not {t.DType}");
    }

    public void Dispose()
    {
        if (_comm == 0) return;
        Nccl.ncclCommDestroy(_comm);
        _comm = 0;
    }
}
