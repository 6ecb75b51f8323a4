using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using VitSharp.Backends.Cuda.Native;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// Compiles the embedded kernel files (Kernels/*.cu, with common.cuh's text in front) with NVRTC for this device's
/// architecture on first use, and keeps the cubins on disk (VITSHARP_KERNEL_CACHE, else ~/.cache/vitsharp/kernels)
/// keyed by a hash of source, options, NVRTC version and architecture, so later runs skip compilation.
/// </summary>
internal sealed unsafe class KernelCache
{
    private readonly CudaContext _ctx;
    private readonly Dictionary<string, nint> _modules = new();
    private readonly Dictionary<(string, string), nint> _functions = new();

    public KernelCache(CudaContext ctx) { _ctx = ctx; }

    /// <summary>Seconds spent in NVRTC so far (0 when every module came from the disk cache).</summary>
    public double CompileSeconds { get; private set; }

    public nint Function(string file, string name)
    {
        lock (_modules)
        {
            if (_functions.TryGetValue((file, name), out var f)) return f;
            if (!_modules.TryGetValue(file, out var module)) _modules[file] = module = LoadModule(file);
            var bytes = Encoding.ASCII.GetBytes(name + "\0");
            fixed (byte* b = bytes)
                Driver.Check(Driver.cuModuleGetFunction(&f, module, b), $"cuModuleGetFunction({file}:{name})");
            _functions[(file, name)] = f;
            return f;
        }
    }

    public static string Source(string file)
    {
        var asm = typeof(KernelCache).Assembly;
        string Read(string n)
        {
            using var s = asm.GetManifestResourceStream("VitSharp.Kernels." + n)
                ?? throw new InvalidOperationException($"kernel resource {n} is not embedded");
            return new StreamReader(s).ReadToEnd();
        }
        return Read("common.cu") + "\n#line 1 \"" + file + "\"\n" + Read(file);
    }

    private nint LoadModule(string file)
    {
        Nvrtc.EnsureLoaded();
        var src = Source(file);
        var (maj, min) = Nvrtc.Version();
        string[] options = [$"--gpu-architecture={_ctx.Arch}", "--std=c++17", "-default-device", "-lineinfo"];
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
            src + "\n" + string.Join(" ", options) + $"\nnvrtc {maj}.{min}"))).Substring(0, 24);
        var dir = Environment.GetEnvironmentVariable("VITSHARP_KERNEL_CACHE")
                  ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "vitsharp", "kernels");
        var path = Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(file)}-{_ctx.Arch}-{key}.cubin");
        byte[]? cubin = null;
        try { if (File.Exists(path)) cubin = File.ReadAllBytes(path); } catch (IOException) { }
        if (cubin is null)
        {
            var t0 = System.Diagnostics.Stopwatch.StartNew();
            cubin = Compile(file, src, options);
            CompileSeconds += t0.Elapsed.TotalSeconds;
            try
            {
                Directory.CreateDirectory(dir);
                var tmp = path + "." + Environment.ProcessId + ".tmp";
                File.WriteAllBytes(tmp, cubin);
                File.Move(tmp, path, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        nint module;
        fixed (byte* p = cubin) Driver.Check(Driver.cuModuleLoadData(&module, p), $"cuModuleLoadData({file})");
        return module;
    }

    private static byte[] Compile(string file, string src, string[] options)
    {
        nint prog;
        var srcBytes = Encoding.UTF8.GetBytes(src + "\0");
        var nameBytes = Encoding.UTF8.GetBytes(file + "\0");
        fixed (byte* s = srcBytes, n = nameBytes)
            Check(Nvrtc.nvrtcCreateProgram(&prog, s, n, 0, null, null), "nvrtcCreateProgram");
        try
        {
            var optBytes = options.Select(o => Encoding.ASCII.GetBytes(o + "\0")).ToArray();
            var handles = optBytes.Select(b => System.Runtime.InteropServices.GCHandle.Alloc(b, System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
            int rc;
            try
            {
                var ptrs = stackalloc byte*[options.Length];
                for (int i = 0; i < options.Length; i++) ptrs[i] = (byte*)handles[i].AddrOfPinnedObject();
                rc = Nvrtc.nvrtcCompileProgram(prog, options.Length, ptrs);
            }
            finally { foreach (var h in handles) h.Free(); }
            if (rc != 0) throw new CudaException($"NVRTC could not compile {file} (status {rc}):\n{Log(prog)}");
            nuint size;
            Check(Nvrtc.nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            fixed (byte* c = cubin) Check(Nvrtc.nvrtcGetCUBIN(prog, c), "nvrtcGetCUBIN");
            return cubin;
        }
        finally { Nvrtc.nvrtcDestroyProgram(&prog); }
    }

    private static string Log(nint prog)
    {
        nuint size;
        if (Nvrtc.nvrtcGetProgramLogSize(prog, &size) != 0 || size <= 1) return "";
        var buf = new byte[(int)size];
        fixed (byte* b = buf) Nvrtc.nvrtcGetProgramLog(prog, b);
        return Encoding.UTF8.GetString(buf, 0, buf.Length - 1);
    }

    private static void Check(int rc, string what)
    {
        if (rc != 0) throw new CudaException($"{what} failed: nvrtcResult {rc}");
    }
}
