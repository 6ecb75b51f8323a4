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

/// <summary>Pinned, 64-byte aligned, zeroed host memory behind a CPU tensor. It comes from calloc, which hands large
/// blocks out as fresh zero pages without writing them: memory that is never written (a parameter whose only copy is
/// its packed one) is never resident.</summary>
public sealed unsafe class HostStorage : Storage
{
    private void* _raw;
    private void* _ptr;

    public HostStorage(long bytes) : base(Device.Cpu, bytes)
    {
        _raw = NativeMemory.AllocZeroed((nuint)Math.Max(bytes, 64) + 64);
        _ptr = (void*)(((nint)_raw + 63) & ~(nint)63);
    }

    public override nint Pointer => _ptr == null ? throw new ObjectDisposedException(nameof(HostStorage)) : (nint)_ptr;

    public override void Dispose()
    {
        if (_raw != null) { NativeMemory.Free(_raw); _raw = null; _ptr = null; }
        GC.SuppressFinalize(this);
    }

    ~HostStorage() { if (_raw != null) NativeMemory.Free(_raw); }
}
