using VitSharp.Backends.Cuda.Native;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>Device memory from the caching allocator; disposing returns the block to the cache, not to the driver.</summary>
public sealed class DeviceStorage : Storage
{
    private readonly DeviceAllocator _owner;
    private nint _ptr;
    internal long BlockBytes { get; }

    internal DeviceStorage(DeviceAllocator owner, Device device, nint ptr, long bytes, long blockBytes) : base(device, bytes)
    {
        _owner = owner;
        _ptr = ptr;
        BlockBytes = blockBytes;
    }

    public override nint Pointer => _ptr == 0 ? throw new ObjectDisposedException(nameof(DeviceStorage)) : _ptr;

    public override void Dispose()
    {
        if (_ptr == 0) return;
        _owner.Release(_ptr, BlockBytes);
        _ptr = 0;
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// A caching allocator: blocks are rounded up to size classes and kept on free lists by size when released, so a
/// forward pass allocates from the driver only the first time. All work runs on one stream in order, so a block
/// released after its last use was queued can be handed to the next op at once. While a CUDA graph is being
/// captured, released blocks are held back (the graph keeps their addresses) until the graph is disposed.
/// </summary>
internal sealed unsafe class DeviceAllocator
{
    private readonly CudaContext _ctx;
    private readonly Dictionary<long, Stack<nint>> _free = new();
    private List<(nint, long)>? _heldForGraph;
    public long BytesInUse { get; private set; }
    public long BytesCached { get; private set; }

    public DeviceAllocator(CudaContext ctx) { _ctx = ctx; }

    private static long SizeClass(long bytes)
    {
        if (bytes <= 512) return 512;
        if (bytes <= 1 << 20) return (bytes + 511) & ~511L;
        // Above 1 MiB: round up to 1/8 of the next power of two, so reuse across nearby sizes works and waste stays ≤ 12.5%.
        long p = 1L << (64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(bytes - 1)));
        long step = Math.Max(p / 8, 1 << 20);
        return (bytes + step - 1) / step * step;
    }

    public DeviceStorage Allocate(long bytes)
    {
        long block = SizeClass(Math.Max(bytes, 1));
        nint p;
        lock (_free)
        {
            if (_free.TryGetValue(block, out var s) && s.Count > 0) { p = s.Pop(); BytesCached -= block; }
            else
            {
                int rc = Driver.cuMemAlloc(&p, (nuint)block);
                if (rc != 0)
                {
                    ReleaseCached();
                    Driver.Check(Driver.cuMemAlloc(&p, (nuint)block), $"cuMemAlloc({block} bytes)");
                }
            }
            BytesInUse += block;
        }
        return new DeviceStorage(this, Device.Cuda(_ctx.Ordinal), p, bytes, block);
    }

    public void Release(nint p, long block)
    {
        lock (_free)
        {
            BytesInUse -= block;
            if (_heldForGraph is not null) { _heldForGraph.Add((p, block)); return; }
            if (!_free.TryGetValue(block, out var s)) _free[block] = s = new Stack<nint>();
            s.Push(p);
            BytesCached += block;
        }
    }

    /// <summary>Returns cached blocks to the driver (after the stream is idle).</summary>
    public void ReleaseCached()
    {
        _ctx.Synchronize();
        foreach (var (_, s) in _free)
            while (s.Count > 0) Driver.cuMemFree(s.Pop());
        BytesCached = 0;
    }

    public void BeginGraphHold() { lock (_free) _heldForGraph ??= new(); }

    public List<(nint, long)> EndGraphHold()
    {
        lock (_free)
        {
            var held = _heldForGraph ?? new();
            _heldForGraph = null;
            return held;
        }
    }

    public void ReturnHeld(List<(nint, long)> held)
    {
        foreach (var (p, b) in held) { BytesInUse += b; Release(p, b); }
    }
}
