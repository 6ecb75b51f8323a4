using System.Runtime.InteropServices;

namespace VitSharp.Tensors;

/// <summary>
/// A block of memory on one device. Host storage is 64-byte aligned native memory (no GC moves, pinnable for copies);
/// device storage is a CUDA pointer owned by that backend's allocator.
/// </summary>
public abstract class Storage : IDisposable
{
    protected Storage(Device device, long bytes) { Device = device; Bytes = bytes; }
    public Device Device { get; }
    public long Bytes { get; }
    /// <summary>Host address or device address of the first byte.</summary>
    public abstract nint Pointer { get; }
    public abstract void Dispose();
}

/// <summary>Pinned, 64-byte aligned host memory behind a CPU tensor.</summary>
public sealed unsafe class HostStorage : Storage
{
    private void* _ptr;

    public HostStorage(long bytes) : base(Device.Cpu, bytes)
    {
        _ptr = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 64), 64);
        NativeMemory.Clear(_ptr, (nuint)Math.Max(bytes, 64));
    }

    public override nint Pointer => _ptr == null ? throw new ObjectDisposedException(nameof(HostStorage)) : (nint)_ptr;

    public override void Dispose()
    {
        if (_ptr != null) { NativeMemory.AlignedFree(_ptr); _ptr = null; }
        GC.SuppressFinalize(this);
    }

    ~HostStorage() { if (_ptr != null) NativeMemory.AlignedFree(_ptr); }
}
