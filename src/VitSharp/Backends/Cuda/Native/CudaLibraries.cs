using System.Runtime.InteropServices;

namespace VitSharp.Backends.Cuda.Native;

/// <summary>Thrown when the CUDA driver, a GPU or one of the CUDA libraries cannot be found or initialised (a user-facing
/// error: the CLI prints its message, not a stack trace).</summary>
public sealed class CudaUnavailableException(string message, Exception? inner = null) : VitSharpException(message, inner);

/// <summary>
/// Finds the native CUDA libraries with <see cref="NativeLibrary.TryLoad(string, out nint)"/> over a search list.
/// VITSHARP_CUDA_PATH (directories separated by ':' or ';') is searched first, then the usual install places,
/// then the loader's own search (LD_LIBRARY_PATH, ldconfig).
/// </summary>
internal static class CudaLibraries
{
    private static readonly string[] DefaultDirs =
    [
        "/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/cuda/lib64",
        "/usr/local/cuda/targets/x86_64-linux/lib",
        "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib",
    ];

    public static IEnumerable<string> SearchDirs()
    {
        var env = Environment.GetEnvironmentVariable("VITSHARP_CUDA_PATH");
        if (!string.IsNullOrWhiteSpace(env))
            foreach (var d in env.Split([':', ';'], StringSplitOptions.RemoveEmptyEntries)) yield return d;
        var cudaPath = Environment.GetEnvironmentVariable("CUDA_PATH");
        if (!string.IsNullOrWhiteSpace(cudaPath)) { yield return Path.Combine(cudaPath, "lib64"); yield return Path.Combine(cudaPath, "bin"); }
        foreach (var d in DefaultDirs) yield return d;
    }

    /// <summary>Loads the first of <paramref name="names"/> found in the search directories, else by bare name.</summary>
    public static nint Load(string what, params string[] names)
    {
        var tried = new List<string>();
        foreach (var dir in SearchDirs())
            foreach (var n in names)
            {
                var p = Path.Combine(dir, n);
                if (!File.Exists(p)) continue;
                tried.Add(p);
                if (NativeLibrary.TryLoad(p, out var h)) { LoadedFrom[what] = p; return h; }
            }
        foreach (var n in names)
        {
            tried.Add(n);
            if (NativeLibrary.TryLoad(n, out var h)) { LoadedFrom[what] = n; return h; }
        }
        throw new CudaUnavailableException(
            $"CUDA {what} library not found (tried {string.Join(", ", tried)}); set VITSHARP_CUDA_PATH to the directory that holds it");
    }

    /// <summary>Loads companion libraries next to an already loaded one (NVRTC's builtins), ignoring failure.</summary>
    public static void TryLoadBeside(string what, string prefix)
    {
        if (!LoadedFrom.TryGetValue(what, out var p) || !Path.IsPathRooted(p)) return;
        var dir = Path.GetDirectoryName(p)!;
        try
        {
            foreach (var f in Directory.GetFiles(dir, prefix + "*")) NativeLibrary.TryLoad(f, out _);
        }
        catch (IOException) { }
    }

    public static readonly Dictionary<string, string> LoadedFrom = new();

    public static nint Export(nint lib, string name) =>
        NativeLibrary.TryGetExport(lib, name, out var f) ? f : throw new CudaUnavailableException($"CUDA export {name} missing");
}
