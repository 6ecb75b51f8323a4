using System.Runtime.InteropServices;

namespace VitSharp.Backends.Cuda.Native;

/// <summary>NCCL's 128-byte ncclUniqueId, passed by value to ncclCommInitRank.</summary>
[StructLayout(LayoutKind.Sequential, Size = 128)]
internal unsafe struct NcclUniqueId
{
    public fixed byte Bytes[128];
}

/// <summary>
/// NCCL (libnccl.so.2) through function pointers, found like the other CUDA libraries (VITSHARP_CUDA_PATH first, then
/// /usr/lib/x86_64-linux-gnu and the usual places). A missing library is a <see cref="CudaUnavailableException"/> (one line).
/// Written against NCCL 2.28's nccl.h; not run on a GPU yet (see docs/TRAINING.md, Multi-GPU).
/// </summary>
internal static unsafe class Nccl
{
    private static readonly Lazy<bool> Loaded = new(LoadAll);
    private static Exception? _loadError;

    public const int Float32 = 7; // ncclFloat32
    public const int Sum = 0, Avg = 4; // ncclSum, ncclAvg

    public static delegate* unmanaged<int*, int> ncclGetVersion;
    public static delegate* unmanaged<NcclUniqueId*, int> ncclGetUniqueId;
    public static delegate* unmanaged<nint*, int, NcclUniqueId, int, int> ncclCommInitRank;
    public static delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> ncclAllReduce;
    public static delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> ncclBroadcast;
    public static delegate* unmanaged<int> ncclGroupStart;
    public static delegate* unmanaged<int> ncclGroupEnd;
    public static delegate* unmanaged<nint, int> ncclCommDestroy;
    public static delegate* unmanaged<int, byte*> ncclGetErrorString;

    public static void EnsureLoaded()
    {
        if (!Loaded.Value) throw _loadError as CudaUnavailableException ?? new CudaUnavailableException("NCCL unavailable", _loadError);
    }

    /// <summary>NCCL's version code (e.g. 22803 for 2.28.3).</summary>
    public static int Version()
    {
        EnsureLoaded();
        int v;
        Check(ncclGetVersion(&v), "ncclGetVersion");
        return v;
    }

    public static void Check(int result, string what)
    {
        if (result == 0) return;
        var msg = ncclGetErrorString is null ? "" : Marshal.PtrToStringUTF8((nint)ncclGetErrorString(result)) ?? "";
        throw new VitSharpException($"{what} failed: NCCL error {result} ({msg})");
    }

    private static bool LoadAll()
    {
        try
        {
            var lib = CudaLibraries.Load("NCCL", "libnccl.so.2", "libnccl.so");
            nint F(string n) => CudaLibraries.Export(lib, n);
            ncclGetVersion = (delegate* unmanaged<int*, int>)F("ncclGetVersion");
            ncclGetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)F("ncclGetUniqueId");
            ncclCommInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)F("ncclCommInitRank");
            ncclAllReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)F("ncclAllReduce");
            ncclBroadcast = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)F("ncclBroadcast");
            ncclGroupStart = (delegate* unmanaged<int>)F("ncclGroupStart");
            ncclGroupEnd = (delegate* unmanaged<int>)F("ncclGroupEnd");
            ncclCommDestroy = (delegate* unmanaged<nint, int>)F("ncclCommDestroy");
            ncclGetErrorString = (delegate* unmanaged<int, byte*>)F("ncclGetErrorString");
            return true;
        }
        catch (Exception e) { _loadError = e; return false; }
    }
}
