using VitSharp.Backends.Cpu;
using VitSharp.Tensors;
using VitSharp.Training.Distributed;

namespace VitSharp.Tests.Training;

/// <summary>The TCP communicator (CPU ranks in separate processes, here threads over localhost): all-reduce (sum and
/// average) and broadcast from every root give the in-process group's bits; ranks that call different collectives get
/// a one-line error; a rank that goes away is an error on the others, not a hang.</summary>
public class TcpCommunicatorTests
{
    private static readonly CpuBackend Be = CpuBackend.Instance;

    private static float[] Values(int rank, int n, int salt) =>
        Enumerable.Range(0, n).Select(i => (float)Math.Sin(0.37 * i + 1.3 * rank + salt) * (1 + i % 7) * 1e-3f * (rank + 1)).ToArray();

    /// <summary>Runs <paramref name="body"/> on one thread per rank, each with its own TCP communicator.</summary>
    private static T[] OverTcp<T>(int world, Func<ICommunicator, T> body)
    {
        int port = LocalLaunch.FreePort();
        var results = new T[world];
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try
            {
                using var comm = TcpCommunicator.Create(r, world, "127.0.0.1", port, TimeSpan.FromSeconds(20));
                Assert.Equal("tcp", comm.Kind);
                results[r] = body(comm);
            }
            catch (Exception e) { errors[r] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(60)), "a rank hung");
        Assert.All(errors, e => Assert.Null(e));
        return results;
    }

    // The same sequence of collectives on any communicator: sums and averages of a small and a large buffer (larger than
    // the sockets' buffers), a broadcast from every root, barriers; returns every result.
    private static List<float[]> Script(ICommunicator comm, int n)
    {
        var outs = new List<float[]>();
        foreach (var (len, op) in new[] { (n, ReduceOp.Sum), (n, ReduceOp.Average), (300_001, ReduceOp.Average) })
        {
            using var t = Be.Allocate([len], DType.F32);
            Be.CopyFromHost(Values(comm.Rank, len, outs.Count), t);
            comm.AllReduce(Be, t, op);
            var host = new float[len];
            Be.CopyToHost(t, host);
            outs.Add(host);
        }
        comm.Barrier();
        for (int root = 0; root < comm.WorldSize; root++)
        {
            using var t = Be.Allocate([n], DType.F32);
            Be.CopyFromHost(Values(comm.Rank, n, 10 + root), t);
            comm.Broadcast(Be, t, root);
            var host = new float[n];
            Be.CopyToHost(t, host);
            outs.Add(host);
            comm.Barrier();
        }
        return outs;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void CollectivesEqualTheInProcessGroupBitForBit(int world)
    {
        const int n = 1037;
        var tcp = OverTcp(world, c => Script(c, n));
        using var group = new InProcessGroup(world);
        var local = group.RunRanks((_, c) => Script(c, n));
        for (int r = 0; r < world; r++)
        {
            Assert.Equal(local[r].Count, tcp[r].Count);
            for (int k = 0; k < local[r].Count; k++)
                Assert.True(local[r][k].AsSpan().SequenceEqual(tcp[r][k]), $"rank {r}, result {k}: TCP differs from the in-process group");
        }
        // Real values: the sum is rank 0's + rank 1's + … in that order, the average that times 1/N, the broadcasts the root's.
        var expected = Values(0, n, 0);
        for (int r = 1; r < world; r++) System.Numerics.Tensors.TensorPrimitives.Add(expected, Values(r, n, 0), expected);
        Assert.Equal(expected, tcp[world - 1][0]);
        Assert.NotEqual(Values(world - 1, n, 0), tcp[world - 1][0]);
        for (int root = 0; root < world; root++)
            for (int r = 0; r < world; r++) Assert.Equal(Values(root, n, 10 + root), tcp[r][3 + root]);
    }

    [Fact]
    public void DifferentCollectivesAreAnErrorNotAWrongResult()
    {
        int port = LocalLaunch.FreePort();
        // Each rank all-reduces a buffer of its own length; returns what the collective threw.
        Exception? AllReduceOf(int rank, int length)
        {
            try
            {
                using var c = TcpCommunicator.Create(rank, 2, "127.0.0.1", port, TimeSpan.FromSeconds(20));
                using var t = Be.Allocate([length], DType.F32);
                Be.Zero(t);
                c.AllReduce(Be, t, ReduceOp.Sum);
                return null;
            }
            catch (Exception e) { return e; }
        }
        Exception? e1 = null;
        var t1 = new Thread(() => e1 = AllReduceOf(1, 12));
        t1.Start();
        var e0 = AllReduceOf(0, 10);
        Assert.True(t1.Join(TimeSpan.FromSeconds(30)), "rank 1 hung after rank 0 stopped");
        Assert.IsType<VitSharpException>(e0);
        Assert.Equal("tcp communicator: collective 0 is an all-reduce of 10 values on rank 0 but an all-reduce of 12 values (collective 0) on rank 1; " +
            "every rank must call the same collectives in the same order", e0!.Message);
        Assert.IsType<VitSharpException>(e1);
        Assert.StartsWith("tcp communicator: rank 1 lost its connection to rank 0 (did that rank stop?)", e1!.Message);
    }

    [Fact]
    public void LaunchJoinsCpuRanksOverTcpAndAWorldOfOneIsTheSingleRank()
    {
        var one = new Launch.Environment(0, 1, 0, "127.0.0.1", LocalLaunch.FreePort(), TimeSpan.FromSeconds(5));
        Assert.Same(SingleRank.Instance, Launch.Join(one, Be));
        int port = LocalLaunch.FreePort();
        var kinds = new string[2];
        var threads = Enumerable.Range(0, 2).Select(r => new Thread(() =>
        {
            using var c = Launch.Join(new Launch.Environment(r, 2, r, "127.0.0.1", port, TimeSpan.FromSeconds(20)), Be);
            c.Barrier();
            kinds[r] = $"{c.Kind} {c.Rank}/{c.WorldSize}";
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(["tcp 0/2", "tcp 1/2"], kinds);
    }
}
