using System.Globalization;
using VitSharp.Backends;

namespace VitSharp.Training.Distributed;

/// <summary>Joins a job described by the torchrun-style environment: RANK, WORLD_SIZE (both or neither), LOCAL_RANK
/// (the GPU index on this host, default RANK), LOCAL_WORLD_SIZE (ranks on this host, default 1), MASTER_ADDR (default
/// 127.0.0.1), MASTER_PORT (default 29500), VITSHARP_RENDEZVOUS_TIMEOUT seconds (default 300).</summary>
public static class Launch
{
    /// <summary>One process's place in a job: its global and local rank, the world sizes, and where rank 0's rendezvous listens.</summary>
    public sealed record Environment(int Rank, int WorldSize, int LocalRank, string MasterAddr, int MasterPort, TimeSpan Timeout, int LocalWorldSize = 1);

    /// <summary>The job this process belongs to, or null when RANK and WORLD_SIZE are unset.</summary>
    public static Environment? FromEnvironment()
    {
        string? Get(string n) => System.Environment.GetEnvironmentVariable(n) is { Length: > 0 } v ? v : null;
        var rank = Get("RANK");
        var world = Get("WORLD_SIZE");
        if (rank is null && world is null) return null;
        int Int(string name, string? v, int fallback) => v is null ? fallback
            : int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x
            : throw new VitSharpException($"{name}={v} is not an integer");
        if (rank is null || world is null) throw new VitSharpException("RANK and WORLD_SIZE go together (torchrun-style launch); one of them is unset");
        int r = Int("RANK", rank, 0), w = Int("WORLD_SIZE", world, 1);
        if (w < 1 || r < 0 || r >= w) throw new VitSharpException($"RANK={r} is not in WORLD_SIZE={w}");
        int localWorld = Int("LOCAL_WORLD_SIZE", Get("LOCAL_WORLD_SIZE"), 1);
        if (localWorld < 1) throw new VitSharpException($"LOCAL_WORLD_SIZE={localWorld} must be at least 1");
        return new Environment(r, w, Int("LOCAL_RANK", Get("LOCAL_RANK"), r), Get("MASTER_ADDR") ?? "127.0.0.1", Int("MASTER_PORT", Get("MASTER_PORT"), 29500),
            TimeSpan.FromSeconds(Int("VITSHARP_RENDEZVOUS_TIMEOUT", Get("VITSHARP_RENDEZVOUS_TIMEOUT"), 300)), localWorld);
    }

    /// <summary>The communicator of <paramref name="env"/> on <paramref name="backend"/>: NCCL on a CUDA backend (a world of
    /// one included: the real NCCL path); on the CPU a <see cref="TcpCommunicator"/> (a world of one: the single rank, so
    /// the run is the plain one). CPU ranks that share a host split its cores: each uses ProcessorCount / LOCAL_WORLD_SIZE
    /// threads (at least one).</summary>
    public static ICommunicator Join(Environment env, ITrainingBackend backend)
    {
        switch (backend)
        {
            case Backends.Cuda.CudaBackend cuda:
                return Backends.Cuda.NcclCommunicator.Create(cuda, env.Rank, env.WorldSize, env.MasterAddr, env.MasterPort, env.Timeout);
            case ITrainingBackend when env.WorldSize == 1:
                return SingleRank.Instance;
            case Backends.Cpu.CpuBackend:
                if (env.LocalWorldSize > 1) Backends.Cpu.CpuThreads.Count = Math.Max(1, System.Environment.ProcessorCount / env.LocalWorldSize);
                return TcpCommunicator.Create(env.Rank, env.WorldSize, env.MasterAddr, env.MasterPort, env.Timeout);
            default:
                throw new VitSharpException($"WORLD_SIZE={env.WorldSize} on the {backend.Device} backend: multi-process data parallelism runs on cuda (NCCL) or cpu (TCP)");
        }
    }
}
