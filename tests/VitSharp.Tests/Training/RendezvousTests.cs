using System.Net;
using System.Net.Sockets;
using VitSharp.Training.Distributed;

namespace VitSharp.Tests.Training;

/// <summary>The TCP rendezvous on localhost: N ranks on N threads get rank 0's 128-byte id; a WORLD_SIZE mismatch is a
/// one-line error on both sides; a missing rank 0 times out with a message naming MASTER_ADDR/MASTER_PORT.</summary>
public class RendezvousTests
{
    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void EveryRankGetsRankZerosId(int world)
    {
        int port = FreePort();
        var id = Enumerable.Range(0, TcpRendezvous.IdBytes).Select(i => (byte)(i * 7 + 1)).ToArray();
        var got = new byte[world][];
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try { got[r] = TcpRendezvous.Exchange(r, world, "127.0.0.1", port, () => id, TimeSpan.FromSeconds(20)); }
            catch (Exception e) { errors[r] = e; }
        })).ToArray();
        // Rank 0 last: the others retry until it listens.
        foreach (var t in threads.Reverse()) { t.Start(); Thread.Sleep(20); }
        foreach (var t in threads) t.Join();
        Assert.All(errors, e => Assert.Null(e));
        Assert.All(got, g => Assert.Equal(id, g));
    }

    [Fact]
    public void WorldSizeMismatchIsRefusedOnBothSides()
    {
        int port = FreePort();
        Exception? server = null, client = null;
        var t0 = new Thread(() =>
        {
            try { TcpRendezvous.Exchange(0, 2, "127.0.0.1", port, () => new byte[TcpRendezvous.IdBytes], TimeSpan.FromSeconds(20)); }
            catch (Exception e) { server = e; }
        });
        t0.Start();
        try { TcpRendezvous.Exchange(1, 3, "127.0.0.1", port, () => [], TimeSpan.FromSeconds(20)); }
        catch (Exception e) { client = e; }
        t0.Join();
        Assert.IsType<VitSharpException>(server);
        Assert.Contains("WORLD_SIZE mismatch: rank 1 says 3, rank 0 says 2", server!.Message);
        Assert.IsType<VitSharpException>(client);
        Assert.Contains("WORLD_SIZE mismatch", client!.Message);
    }

    [Fact]
    public void MissingRankZeroTimesOut()
    {
        var e = Assert.Throws<VitSharpException>(() =>
            TcpRendezvous.Exchange(1, 2, "127.0.0.1", FreePort(), () => [], TimeSpan.FromSeconds(1)));
        Assert.Contains("could not reach rank 0 at 127.0.0.1", e.Message);
        Assert.Contains("MASTER_ADDR/MASTER_PORT", e.Message);
    }
}
