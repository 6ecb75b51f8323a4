namespace VitSharp.Backends.Cuda.Native;

/// <summary>The CUDA driver API (libcuda) through function pointers: context, streams, events, memory, modules, graphs.</summary>
internal static unsafe class Driver
{
    private static readonly Lazy<bool> Loaded = new(LoadAll);
    private static Exception? _loadError;

    public static delegate* unmanaged<uint, int> cuInit;
    public static delegate* unmanaged<int*, int> cuDriverGetVersion;
    public static delegate* unmanaged<int*, int> cuDeviceGetCount;
    public static delegate* unmanaged<int*, int, int> cuDeviceGet;
    public static delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public static delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public static delegate* unmanaged<nint*, int, int> cuDevicePrimaryCtxRetain;
    public static delegate* unmanaged<nint, int> cuCtxSetCurrent;
    public static delegate* unmanaged<nint*, uint, int> cuStreamCreate;
    public static delegate* unmanaged<nint, int> cuStreamSynchronize;
    public static delegate* unmanaged<nint, int> cuStreamDestroy;
    public static delegate* unmanaged<nint*, uint, int> cuEventCreate;
    public static delegate* unmanaged<nint, nint, int> cuEventRecord;
    public static delegate* unmanaged<nint, int> cuEventSynchronize;
    public static delegate* unmanaged<float*, nint, nint, int> cuEventElapsedTime;
    public static delegate* unmanaged<nint, int> cuEventDestroy;
    public static delegate* unmanaged<nint*, nuint, int> cuMemAlloc;
    public static delegate* unmanaged<nint, int> cuMemFree;
    public static delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo;
    public static delegate* unmanaged<nint, void*, nuint, nint, int> cuMemcpyHtoDAsync;
    public static delegate* unmanaged<void*, nint, nuint, nint, int> cuMemcpyDtoHAsync;
    public static delegate* unmanaged<nint, nint, nuint, nint, int> cuMemcpyDtoDAsync;
    public static delegate* unmanaged<nint, byte, nuint, nint, int> cuMemsetD8Async;
    public static delegate* unmanaged<nint*, void*, int> cuModuleLoadData;
    public static delegate* unmanaged<nint*, nint, byte*, int> cuModuleGetFunction;
    public static delegate* unmanaged<nint, int, int, int> cuFuncSetAttribute;
    public static delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> cuLaunchKernel;
    public static delegate* unmanaged<nint, int, int> cuStreamBeginCapture;
    public static delegate* unmanaged<nint, nint*, int> cuStreamEndCapture;
    public static delegate* unmanaged<nint*, nint, ulong, int> cuGraphInstantiateWithFlags;
    public static delegate* unmanaged<nint, nint, int> cuGraphLaunch;
    public static delegate* unmanaged<nint, int> cuGraphExecDestroy;
    public static delegate* unmanaged<nint, int> cuGraphDestroy;
    public static delegate* unmanaged<int, byte**, int> cuGetErrorString;

    /// <summary>True when libcuda loaded, cuInit succeeded and at least one device exists.</summary>
    public static bool IsAvailable(out string reason)
    {
        try { EnsureLoaded(); reason = ""; return true; }
        catch (CudaUnavailableException e) { reason = e.Message; return false; }
    }

    public static void EnsureLoaded()
    {
        if (!Loaded.Value) throw _loadError as CudaUnavailableException ?? new CudaUnavailableException("CUDA driver unavailable", _loadError);
    }

    private static bool LoadAll()
    {
        try
        {
            var lib = CudaLibraries.Load("driver", OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"]);
            nint F(string n) => CudaLibraries.Export(lib, n);
            cuInit = (delegate* unmanaged<uint, int>)F("cuInit");
            cuDriverGetVersion = (delegate* unmanaged<int*, int>)F("cuDriverGetVersion");
            cuDeviceGetCount = (delegate* unmanaged<int*, int>)F("cuDeviceGetCount");
            cuDeviceGet = (delegate* unmanaged<int*, int, int>)F("cuDeviceGet");
            cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)F("cuDeviceGetName");
            cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)F("cuDeviceGetAttribute");
            cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)F("cuDevicePrimaryCtxRetain");
            cuCtxSetCurrent = (delegate* unmanaged<nint, int>)F("cuCtxSetCurrent");
            cuStreamCreate = (delegate* unmanaged<nint*, uint, int>)F("cuStreamCreate");
            cuStreamSynchronize = (delegate* unmanaged<nint, int>)F("cuStreamSynchronize");
            cuStreamDestroy = (delegate* unmanaged<nint, int>)F("cuStreamDestroy_v2");
            cuEventCreate = (delegate* unmanaged<nint*, uint, int>)F("cuEventCreate");
            cuEventRecord = (delegate* unmanaged<nint, nint, int>)F("cuEventRecord");
            cuEventSynchronize = (delegate* unmanaged<nint, int>)F("cuEventSynchronize");
            cuEventElapsedTime = (delegate* unmanaged<float*, nint, nint, int>)(System.Runtime.InteropServices.NativeLibrary.TryGetExport(lib, "cuEventElapsedTime_v2", out var eet) ? eet : F("cuEventElapsedTime"));
            cuEventDestroy = (delegate* unmanaged<nint, int>)F("cuEventDestroy_v2");
            cuMemAlloc = (delegate* unmanaged<nint*, nuint, int>)F("cuMemAlloc_v2");
            cuMemFree = (delegate* unmanaged<nint, int>)F("cuMemFree_v2");
            cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)F("cuMemGetInfo_v2");
            cuMemcpyHtoDAsync = (delegate* unmanaged<nint, void*, nuint, nint, int>)F("cuMemcpyHtoDAsync_v2");
            cuMemcpyDtoHAsync = (delegate* unmanaged<void*, nint, nuint, nint, int>)F("cuMemcpyDtoHAsync_v2");
            cuMemcpyDtoDAsync = (delegate* unmanaged<nint, nint, nuint, nint, int>)F("cuMemcpyDtoDAsync_v2");
            cuMemsetD8Async = (delegate* unmanaged<nint, byte, nuint, nint, int>)F("cuMemsetD8Async");
            cuModuleLoadData = (delegate* unmanaged<nint*, void*, int>)F("cuModuleLoadData");
            cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)F("cuModuleGetFunction");
            cuFuncSetAttribute = (delegate* unmanaged<nint, int, int, int>)F("cuFuncSetAttribute");
            cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)F("cuLaunchKernel");
            cuStreamBeginCapture = (delegate* unmanaged<nint, int, int>)F("cuStreamBeginCapture_v2");
            cuStreamEndCapture = (delegate* unmanaged<nint, nint*, int>)F("cuStreamEndCapture");
            cuGraphInstantiateWithFlags = (delegate* unmanaged<nint*, nint, ulong, int>)F("cuGraphInstantiateWithFlags");
            cuGraphLaunch = (delegate* unmanaged<nint, nint, int>)F("cuGraphLaunch");
            cuGraphExecDestroy = (delegate* unmanaged<nint, int>)F("cuGraphExecDestroy");
            cuGraphDestroy = (delegate* unmanaged<nint, int>)F("cuGraphDestroy");
            cuGetErrorString = (delegate* unmanaged<int, byte**, int>)F("cuGetErrorString");

            int rc = cuInit(0);
            if (rc != 0) throw new CudaUnavailableException($"cuInit failed: {ErrorName(rc)} (no usable NVIDIA driver or GPU)");
            int count;
            Check(cuDeviceGetCount(&count), "cuDeviceGetCount");
            if (count == 0) throw new CudaUnavailableException("the CUDA driver loaded but reports no GPU");
            return true;
        }
        catch (Exception e)
        {
            _loadError = e as CudaUnavailableException ?? new CudaUnavailableException("CUDA driver unavailable: " + e.Message, e);
            return false;
        }
    }

    public static string ErrorName(int rc)
    {
        if (cuGetErrorString == null) return $"CUresult {rc}";
        byte* s = null;
        return cuGetErrorString(rc, &s) == 0 && s != null ? $"{new string((sbyte*)s)} ({rc})" : $"CUresult {rc}";
    }

    public static void Check(int rc, string what)
    {
        if (rc != 0) throw new CudaException($"{what} failed: {ErrorName(rc)}");
    }
}

/// <summary>A CUDA call failed on a machine where CUDA is present.</summary>
public sealed class CudaException(string message) : Exception(message);
