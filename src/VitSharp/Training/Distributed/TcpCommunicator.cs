using System.Buffers.Binary;
using System.Net.Sockets;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace VitSharp.Training.Distributed;

/// <summary>
/// CPU ranks in separate processes (or on separate hosts): a star through rank 0 over the sockets the
/// <see cref="TcpRendezvous"/> opened. An all-reduce sends every rank's values to rank 0, which sums them in rank order
/// (rank 0's values, plus rank 1's, …, in fp32, exactly as <see cref="InProcessGroup"/>) and sends the sum back, so the
/// results are bit for bit those of the in-process group. A broadcast goes through rank 0; a barrier is a round trip
/// through rank 0. Every message starts with a header (collective, length, root, sequence number) that rank 0 checks
/// against its own call: ranks that call different collectives get a one-line error, not a wrong result. A rank that
/// dies closes its socket, which ends the others' waits with an error (no timeout: rank 0 may evaluate or write a
/// checkpoint for as long as it needs while the others wait). Traffic is O(world × buffer) at rank 0: made for
/// CPU training and CI, not for speed.
/// </summary>
public sealed class TcpCommunicator : HostCommunicator
{
    private const int HeaderBytes = 16;
    private enum Op { Sum = 1, Broadcast = 2, Barrier = 3 }

    private readonly TcpRendezvous.Connections _links;
    private readonly byte[] _header = new byte[HeaderBytes];
    private float[][] _slots = [];
    private int _sequence;

    private TcpCommunicator(TcpRendezvous.Connections links) => _links = links;

    /// <summary>Joins the job: the rendezvous on <paramref name="masterAddr"/>:<paramref name="port"/>, whose sockets then
    /// carry the collectives.</summary>
    public static TcpCommunicator Create(int rank, int world, string masterAddr, int port, TimeSpan timeout) =>
        new(TcpRendezvous.Connect(rank, world, masterAddr, port, () => new byte[TcpRendezvous.IdBytes], timeout));

    public override int Rank => _links.Rank;
    public override int WorldSize => _links.WorldSize;
    public override string Kind => "tcp";

    protected override void SumHost(float[] data, int length)
    {
        if (WorldSize == 1) return;
        var mine = data.AsSpan(0, length);
        if (Rank != 0)
        {
            var s = ToRoot;
            SendHeader(s, Op.Sum, length, 0);
            Send(s, mine, 0);
            Receive(s, mine, 0);
            return;
        }
        if (_slots.Length < WorldSize) _slots = new float[WorldSize][];
        for (int r = 1; r < WorldSize; r++)
        {
            var s = Peer(r);
            ExpectHeader(s, r, Op.Sum, length, 0);
            if ((_slots[r]?.Length ?? 0) < length) _slots[r] = new float[length];
            Receive(s, _slots[r].AsSpan(0, length), r);
        }
        for (int r = 1; r < WorldSize; r++) TensorPrimitives.Add(mine, _slots[r].AsSpan(0, length), mine);
        for (int r = 1; r < WorldSize; r++) Send(Peer(r), mine, r);
        _sequence++;
    }

    protected override void BroadcastHost(float[] data, int length, int root)
    {
        if (WorldSize == 1) return;
        var span = data.AsSpan(0, length);
        if (Rank != 0)
        {
            var s = ToRoot;
            SendHeader(s, Op.Broadcast, length, root);
            if (Rank == root) Send(s, span, 0);
            else Receive(s, span, 0);
            return;
        }
        for (int r = 1; r < WorldSize; r++)
        {
            var s = Peer(r);
            ExpectHeader(s, r, Op.Broadcast, length, root);
            if (r == root) Receive(s, span, r);
        }
        for (int r = 1; r < WorldSize; r++)
            if (r != root) Send(Peer(r), span, r);
        _sequence++;
    }

    public override void Barrier()
    {
        if (WorldSize == 1) return;
        if (Rank != 0)
        {
            var s = ToRoot;
            SendHeader(s, Op.Barrier, 0, 0);
            ReadExactly(s, _header, 0); // rank 0's release
            return;
        }
        for (int r = 1; r < WorldSize; r++) ExpectHeader(Peer(r), r, Op.Barrier, 0, 0);
        for (int r = 1; r < WorldSize; r++) SendHeader(Peer(r), Op.Barrier, 0, 0, to: r);
        _sequence++;
    }

    private NetworkStream ToRoot => _links.Streams[0]!;
    private NetworkStream Peer(int r) => _links.Streams[r]!;

    // Rank 0 sends a header only as a barrier's release (to: that rank); other ranks send one per collective and count it.
    private void SendHeader(NetworkStream s, Op op, int length, int root, int to = 0)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_header, (int)op);
        BinaryPrimitives.WriteInt32LittleEndian(_header.AsSpan(4), length);
        BinaryPrimitives.WriteInt32LittleEndian(_header.AsSpan(8), root);
        BinaryPrimitives.WriteInt32LittleEndian(_header.AsSpan(12), _sequence);
        Write(s, _header, to);
        if (Rank != 0) _sequence++;
    }

    private void ExpectHeader(NetworkStream s, int from, Op op, int length, int root)
    {
        ReadExactly(s, _header, from);
        var (gotOp, gotLength, gotRoot, gotSeq) = ((Op)BinaryPrimitives.ReadInt32LittleEndian(_header), BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(4)),
            BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(8)), BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(12)));
        if (gotOp != op || gotLength != length || gotRoot != root || gotSeq != _sequence)
            throw new VitSharpException($"tcp communicator: collective {_sequence} is {Describe(op, length, root)} on rank 0 but " +
                $"{Describe(gotOp, gotLength, gotRoot)} (collective {gotSeq}) on rank {from}; every rank must call the same collectives in the same order");
    }

    private static string Describe(Op op, int length, int root) => op switch
    {
        Op.Sum => $"an all-reduce of {length} values",
        Op.Broadcast => $"a broadcast of {length} values from rank {root}",
        Op.Barrier => "a barrier",
        _ => $"an unknown message ({(int)op})",
    };

    private void Send(NetworkStream s, ReadOnlySpan<float> values, int to) => Write(s, MemoryMarshal.AsBytes(values), to);

    private void Receive(NetworkStream s, Span<float> values, int from) => ReadExactly(s, MemoryMarshal.AsBytes(values), from);

    // peer: the rank at the other end (named in errors).
    private void Write(NetworkStream s, ReadOnlySpan<byte> bytes, int peer)
    {
        try { s.Write(bytes); }
        catch (IOException e) { throw Lost(peer, e); }
        catch (ObjectDisposedException e) { throw Lost(peer, e); }
    }

    private void ReadExactly(NetworkStream s, Span<byte> bytes, int from)
    {
        try { s.ReadExactly(bytes); }
        catch (EndOfStreamException e) { throw Lost(from, e); }
        catch (IOException e) { throw Lost(from, e); }
        catch (ObjectDisposedException e) { throw Lost(from, e); }
    }

    private VitSharpException Lost(int peer, Exception e) => new(
        $"tcp communicator: rank {Rank} lost its connection to rank {peer} (did that rank stop?): {ErrorText.OneLine(e.Message)}", e);

    public override void Dispose() => _links.Dispose();
}
