namespace VitSharp.Backends.Cuda.Native;

/// <summary>NVRTC: compiles CUDA C++ source to a cubin for the device at run time.</summary>
internal static unsafe class Nvrtc
{
    private static readonly Lazy<bool> Loaded = new(LoadAll);
    private static Exception? _loadError;

    public static delegate* unmanaged<int*, int*, int> nvrtcVersion;
    public static delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    public static delegate* unmanaged<nint, int, byte**, int> nvrtcCompileProgram;
    public static delegate* unmanaged<nint, nuint*, int> nvrtcGetProgramLogSize;
    public static delegate* unmanaged<nint, byte*, int> nvrtcGetProgramLog;
    public static delegate* unmanaged<nint, nuint*, int> nvrtcGetCUBINSize;
    public static delegate* unmanaged<nint, byte*, int> nvrtcGetCUBIN;
    public static delegate* unmanaged<nint*, int> nvrtcDestroyProgram;

    public static void EnsureLoaded()
    {
        if (!Loaded.Value) throw _loadError as CudaUnavailableException ?? new CudaUnavailableException("NVRTC unavailable", _loadError);
    }

    private static bool LoadAll()
    {
        try
        {
            var lib = CudaLibraries.Load("nvrtc", OperatingSystem.IsWindows()
                ? ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll"]
                : ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]);
            // NVRTC dlopens its builtins library by soname; loading it first from the same folder lets that succeed
            // without LD_LIBRARY_PATH.
            CudaLibraries.TryLoadBeside("nvrtc", "libnvrtc-builtins.so");
            nint F(string n) => CudaLibraries.Export(lib, n);
            nvrtcVersion = (delegate* unmanaged<int*, int*, int>)F("nvrtcVersion");
            nvrtcCreateProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)F("nvrtcCreateProgram");
            nvrtcCompileProgram = (delegate* unmanaged<nint, int, byte**, int>)F("nvrtcCompileProgram");
            nvrtcGetProgramLogSize = (delegate* unmanaged<nint, nuint*, int>)F("nvrtcGetProgramLogSize");
            nvrtcGetProgramLog = (delegate* unmanaged<nint, byte*, int>)F("nvrtcGetProgramLog");
            nvrtcGetCUBINSize = (delegate* unmanaged<nint, nuint*, int>)F("nvrtcGetCUBINSize");
            nvrtcGetCUBIN = (delegate* unmanaged<nint, byte*, int>)F("nvrtcGetCUBIN");
            nvrtcDestroyProgram = (delegate* unmanaged<nint*, int>)F("nvrtcDestroyProgram");
            return true;
        }
        catch (Exception e) { _loadError = e; return false; }
    }

    public static (int Major, int Minor) Version()
    {
        EnsureLoaded();
        int a, b;
        nvrtcVersion(&a, &b);
        return (a, b);
    }
}
