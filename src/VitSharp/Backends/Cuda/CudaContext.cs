using System.Text;
using VitSharp.Backends.Cuda.Native;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// One GPU: its primary context, the stream every op of a backend is queued on, the caching allocator and the
/// compiled kernel modules. Made once per device index and shared by the backends on that device.
/// </summary>
public sealed unsafe class CudaContext
{
    private static readonly Dictionary<int, CudaContext> Contexts = new();

    public int Ordinal { get; }
    public string Name { get; }
    public int ComputeMajor { get; }
    public int ComputeMinor { get; }
    public int MultiprocessorCount { get; }
    public int MaxSharedPerBlockOptin { get; }
    internal nint Handle { get; }
    internal nint Stream { get; }
    internal DeviceAllocator Allocator { get; }
    internal KernelCache Kernels { get; }

    /// <summary>True when the driver loads and reports a GPU and NVRTC and cuBLASLt load; <paramref name="reason"/>
    /// says why not otherwise.</summary>
    public static bool IsAvailable(out string reason)
    {
        try
        {
            Driver.EnsureLoaded();
            Nvrtc.EnsureLoaded();
            CublasLt.EnsureLoaded();
            reason = "";
            return true;
        }
        catch (CudaUnavailableException e) { reason = e.Message; return false; }
    }

    public static bool IsAvailable() => IsAvailable(out _);

    public static CudaContext Get(int ordinal = 0)
    {
        lock (Contexts)
        {
            if (!Contexts.TryGetValue(ordinal, out var c)) Contexts[ordinal] = c = new CudaContext(ordinal);
            c.MakeCurrent();
            return c;
        }
    }

    /// <summary>How many GPUs the driver reports (loads the driver; a <see cref="CudaUnavailableException"/> without one).</summary>
    public static int DeviceCount()
    {
        Driver.EnsureLoaded();
        int count;
        Driver.Check(Driver.cuDeviceGetCount(&count), "cuDeviceGetCount");
        return count;
    }

    private CudaContext(int ordinal)
    {
        int count = DeviceCount();
        if (ordinal < 0 || ordinal >= count)
            throw new CudaUnavailableException($"cuda:{ordinal}: this machine has {count} GPU{(count == 1 ? "" : "s")} (cuda:0{(count > 1 ? $" … cuda:{count - 1}" : "")})");
        Ordinal = ordinal;
        int dev;
        Driver.Check(Driver.cuDeviceGet(&dev, ordinal), $"cuDeviceGet({ordinal})");
        var name = stackalloc byte[256];
        Driver.Check(Driver.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
        Name = Encoding.ASCII.GetString(name, new ReadOnlySpan<byte>(name, 256).IndexOf((byte)0));
        ComputeMajor = Attribute(dev, 75); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        ComputeMinor = Attribute(dev, 76);
        MultiprocessorCount = Attribute(dev, 16);
        MaxSharedPerBlockOptin = Attribute(dev, 97);
        nint ctx;
        Driver.Check(Driver.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
        Handle = ctx;
        MakeCurrent();
        nint s;
        Driver.Check(Driver.cuStreamCreate(&s, 1), "cuStreamCreate"); // CU_STREAM_NON_BLOCKING
        Stream = s;
        Allocator = new DeviceAllocator(this);
        Kernels = new KernelCache(this);
    }

    private static int Attribute(int dev, int attr)
    {
        int v;
        Driver.Check(Driver.cuDeviceGetAttribute(&v, attr, dev), $"cuDeviceGetAttribute({attr})");
        return v;
    }

    internal void MakeCurrent() => Driver.Check(Driver.cuCtxSetCurrent(Handle), "cuCtxSetCurrent");

    public string Arch => $"sm_{ComputeMajor}{ComputeMinor}";

    public void Synchronize() => Driver.Check(Driver.cuStreamSynchronize(Stream), "cuStreamSynchronize");

    public override string ToString() => $"{Name} ({Arch}, {MultiprocessorCount} SMs)";
}

/// <summary>Device events on the backend's stream, for timing.</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private nint _event;
    private readonly CudaContext _ctx;

    public CudaEvent(CudaContext ctx)
    {
        _ctx = ctx;
        nint e;
        Driver.Check(Driver.cuEventCreate(&e, 0), "cuEventCreate");
        _event = e;
    }

    public void Record() => Driver.Check(Driver.cuEventRecord(_event, _ctx.Stream), "cuEventRecord");

    /// <summary>Milliseconds from <paramref name="start"/> to this event (waits for this event).</summary>
    public float ElapsedSince(CudaEvent start)
    {
        Driver.Check(Driver.cuEventSynchronize(_event), "cuEventSynchronize");
        float ms;
        Driver.Check(Driver.cuEventElapsedTime(&ms, start._event, _event), "cuEventElapsedTime");
        return ms;
    }

    public void Dispose()
    {
        if (_event != 0) { Driver.cuEventDestroy(_event); _event = 0; }
    }
}
