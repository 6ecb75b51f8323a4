using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace VitSharp.Training.Distributed;

/// <summary>
/// The torchrun-style start of a job: rank 0 listens on MASTER_PORT, every other rank connects to MASTER_ADDR:MASTER_PORT
/// (retrying until rank 0 listens), says its rank and world size, and receives the 128-byte id rank 0 made (NCCL's unique
/// id). A rank that states another world size, a rank out of range or a rank twice is refused, with the reason sent to
/// it; nobody waits longer than <c>timeout</c>. The same binary thus starts under Slurm or Kubernetes with only the
/// environment variables.
/// </summary>
public static class TcpRendezvous
{
    public const int IdBytes = 128;
    private const uint Magic = 0x5653525a; // "VSRZ"
    private const int Version = 1;

    /// <summary>Rank 0 returns <paramref name="makeId"/>()'s id once every other rank has it; other ranks return rank 0's.</summary>
    public static byte[] Exchange(int rank, int world, string masterAddr, int port, Func<byte[]> makeId, TimeSpan timeout)
    {
        using var c = Connect(rank, world, masterAddr, port, makeId, timeout);
        return c.Id;
    }

    /// <summary>
    /// The rendezvous with its sockets kept open (the star a <see cref="TcpCommunicator"/> runs on): rank 0 holds one
    /// connection per other rank (index = rank; index 0 is null), every other rank one to rank 0 (index 0).
    /// </summary>
    public sealed class Connections : IDisposable
    {
        internal Connections(int rank, int world, byte[] id, TcpClient?[] peers)
        {
            Rank = rank;
            WorldSize = world;
            Id = id;
            _peers = peers;
            Streams = peers.Select(p => p?.GetStream()).ToArray();
        }
        private readonly TcpClient?[] _peers;
        public int Rank { get; }
        public int WorldSize { get; }
        public byte[] Id { get; }
        /// <summary>Rank 0: the stream to rank r at index r (null at 0); other ranks: the stream to rank 0 at index 0.</summary>
        public IReadOnlyList<NetworkStream?> Streams { get; }
        public void Dispose() { foreach (var p in _peers) p?.Dispose(); }
    }

    /// <summary>As <see cref="Exchange"/>, returning the open connections (the caller disposes them).</summary>
    public static Connections Connect(int rank, int world, string masterAddr, int port, Func<byte[]> makeId, TimeSpan timeout)
    {
        if (world < 1 || rank < 0 || rank >= world) throw new VitSharpException($"rendezvous: rank {rank} is not in a world of {world}");
        var deadline = DateTime.UtcNow + timeout;
        if (rank == 0)
        {
            var id = makeId();
            var peers = Serve(world, port, id, deadline, timeout);
            return new Connections(0, world, id, peers);
        }
        var (client, got) = Join(rank, world, masterAddr, port, deadline, timeout);
        var mine = new TcpClient?[world];
        mine[0] = client;
        return new Connections(rank, world, got, mine);
    }

    private static TcpClient?[] Serve(int world, int port, byte[] id, DateTime deadline, TimeSpan timeout)
    {
        if (id.Length != IdBytes) throw new ArgumentException($"the id must be {IdBytes} bytes");
        var listener = new TcpListener(IPAddress.Any, port);
        listener.Start();
        var peers = new TcpClient?[world];
        bool ok = false;
        try
        {
            var joined = new HashSet<int>();
            while (joined.Count < world - 1)
            {
                var left = deadline - DateTime.UtcNow;
                var accept = listener.AcceptTcpClientAsync();
                if (left <= TimeSpan.Zero || !accept.Wait(left))
                    throw new VitSharpException($"rendezvous: rank 0 waited {timeout.TotalSeconds:0} s on port {port}; {joined.Count + 1} of {world} ranks arrived " +
                        $"(missing: {string.Join(", ", Enumerable.Range(1, world - 1).Where(r => !joined.Contains(r)))})");
                var client = accept.Result;
                bool kept = false;
                try
                {
                    var s = client.GetStream();
                    s.ReadTimeout = s.WriteTimeout = (int)Math.Clamp((deadline - DateTime.UtcNow).TotalMilliseconds, 1000, int.MaxValue);
                    var hello = ReadExactly(s, 16);
                    uint magic = BinaryPrimitives.ReadUInt32LittleEndian(hello);
                    int version = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(4)), r = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(8)),
                        w = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(12));
                    string? error = magic != Magic || version != Version ? "not a VitSharp rendezvous of this version"
                        : w != world ? $"WORLD_SIZE mismatch: rank {r} says {w}, rank 0 says {world}"
                        : r < 1 || r >= world ? $"rank {r} is not in a world of {world}"
                        : joined.Contains(r) ? $"rank {r} joined twice" : null;
                    if (error is not null)
                    {
                        Reply(s, error);
                        throw new VitSharpException("rendezvous: " + error);
                    }
                    Reply(s, null);
                    s.Write(id);
                    joined.Add(r);
                    Settle(client);
                    peers[r] = client;
                    kept = true;
                }
                finally { if (!kept) client.Dispose(); }
            }
            ok = true;
            return peers;
        }
        finally
        {
            listener.Stop();
            if (!ok) foreach (var p in peers) p?.Dispose();
        }
    }

    // After the handshake: no Nagle delay (collectives are request/response), and no read/write timeout (a collective
    // may wait as long as rank 0 evaluates or writes a checkpoint; a rank that dies closes its socket, which ends the wait).
    private static void Settle(TcpClient client)
    {
        client.NoDelay = true;
        var s = client.GetStream();
        s.ReadTimeout = s.WriteTimeout = Timeout.Infinite;
    }

    private static (TcpClient Client, byte[] Id) Join(int rank, int world, string addr, int port, DateTime deadline, TimeSpan timeout)
    {
        while (true)
        {
            TcpClient? client = new();
            try
            {
                var connect = client.ConnectAsync(addr, port);
                var left = deadline - DateTime.UtcNow;
                if (left > TimeSpan.Zero && connect.Wait(left))
                {
                    var s = client.GetStream();
                    s.ReadTimeout = s.WriteTimeout = (int)Math.Clamp((deadline - DateTime.UtcNow).TotalMilliseconds, 1000, int.MaxValue);
                    var hello = new byte[16];
                    BinaryPrimitives.WriteUInt32LittleEndian(hello, Magic);
                    BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), Version);
                    BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), rank);
                    BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(12), world);
                    s.Write(hello);
                    var status = ReadExactly(s, 4);
                    int len = BinaryPrimitives.ReadInt32LittleEndian(status);
                    if (len > 0) throw new VitSharpException($"rendezvous with {addr}:{port} refused rank {rank}: {System.Text.Encoding.UTF8.GetString(ReadExactly(s, Math.Min(len, 4096)))}");
                    var id = ReadExactly(s, IdBytes);
                    Settle(client);
                    var kept = client;
                    client = null; // the caller owns it now
                    return (kept, id);
                }
            }
            catch (AggregateException e) when (e.InnerException is SocketException) { } // rank 0 not listening yet
            catch (SocketException) { }
            finally { client?.Dispose(); }
            if (DateTime.UtcNow >= deadline)
                throw new VitSharpException($"rendezvous: rank {rank} could not reach rank 0 at {addr}:{port} within {timeout.TotalSeconds:0} s (MASTER_ADDR/MASTER_PORT)");
            Thread.Sleep(100);
        }
    }

    private static void Reply(NetworkStream s, string? error)
    {
        var msg = error is null ? [] : System.Text.Encoding.UTF8.GetBytes(error);
        var head = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(head, msg.Length);
        s.Write(head);
        s.Write(msg);
    }

    private static byte[] ReadExactly(NetworkStream s, int n)
    {
        var b = new byte[n];
        try { s.ReadExactly(b); }
        catch (EndOfStreamException e) { throw new VitSharpException("rendezvous: the other side closed the connection", e); }
        catch (IOException e) { throw new VitSharpException("rendezvous: " + ErrorText.OneLine(e.Message), e); }
        return b;
    }
}
