using System.Diagnostics;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Data.Codecs;
using VitSharp.Inference;

namespace VitSharp.Bench;

/// <summary>
/// Where a cold start goes (issue 13 §3): the steps of <c>Classifier.Load</c> and one classification, each timed in
/// one fresh process, with the resident memory after it (VmRSS: anonymous + file-backed pages; VmHWM: the peak so
/// far). "runtime" is process start to Main (the kernel's start time has 10 ms resolution). The second forward is
/// what the first would cost without JIT and first-touch page faults. "JIT" is the time the JIT spent compiling in
/// the step, all threads (System.Runtime.JitInfo), and the methods it compiled. Run it as its own process per measurement.
/// By default the steps are those of <c>Classifier.Load</c> (mapped file, <c>VisionModel.LoadForInference</c>);
/// <c>--copy</c> runs the copying path instead (file read into arrays, <c>CreateModel</c>, <c>UseInt8</c>,
/// <c>PrepareForInference</c>), as Classifier.Load did before the mapping.
/// Usage: startup --checkpoint FILE [--image IMG] [--dtype int8] [--copy] [--reload: time a second Checkpoint.Load]
/// </summary>
public sealed class StartupBench : IBench
{
    public string Name => "startup";
    public string Description => "cold-start breakdown of Classifier.Load + one prediction, with RSS per step";

    public int Run(string[] args)
    {
        var main = DateTime.Now;
        string? path = null, image = null;
        bool int8 = false, copy = args.Contains("--copy");
        for (int i = 0; i < args.Length - 1; i++)
            switch (args[i])
            {
                case "--checkpoint": path = args[i + 1]; break;
                case "--image": image = args[i + 1]; break;
                case "--dtype": int8 = args[i + 1] == "int8"; break;
            }
        if (path is null) { Console.WriteLine("startup: --checkpoint FILE is required"); return 2; }
        var start = Process.GetCurrentProcess().StartTime;
        Console.WriteLine($"{"runtime (start → Main)",-34} {(main - start).TotalMilliseconds,7:F0} ms  {Memory()}");
        var sw = Stopwatch.StartNew();
        var jit = System.Runtime.JitInfo.GetCompilationTime();
        long methods = System.Runtime.JitInfo.GetCompiledMethodCount();
        Console.WriteLine($"{"  (JIT before Main)",-34} {jit.TotalMilliseconds,7:F1} ms, {methods} methods");
        void Step(string what)
        {
            var j = System.Runtime.JitInfo.GetCompilationTime();
            long m = System.Runtime.JitInfo.GetCompiledMethodCount();
            Console.WriteLine($"{what,-34} {sw.Elapsed.TotalMilliseconds,7:F1} ms  {Memory()}  JIT {(j - jit).TotalMilliseconds,5:F1} ms / {m - methods,4} methods");
            (jit, methods) = (j, m);
            sw.Restart();
        }
        using var ckpt = Checkpoint.Load(path, new LoadOptions { MapWeights = !copy });
        Step(copy ? "Checkpoint.Load (read, decode)" : "Checkpoint.Load (map, check)");
        if (args.Contains("--reload"))
        {
            using (Checkpoint.Load(path, new LoadOptions { MapWeights = !copy })) { }
            Step("Checkpoint.Load again (JIT done)");
        }
        var metadata = Recipes.Resolve(ckpt, null, null);
        Models.VisionModel model;
        if (copy)
        {
            model = ckpt.CreateModel(CpuBackend.Instance);
            Step("CreateModel (parameters)");
            if (ckpt.Int8Weights is { } stored) model.UseInt8(stored);
            else if (int8) model.UseInt8();
            Step("UseInt8");
            model.PrepareForInference();
            Step("PrepareForInference (prepack)");
        }
        else
        {
            model = Models.VisionModel.Create(ckpt.Config, CpuBackend.Instance);
            Step("VisionModel.Create");
            model.LoadForInference(ckpt.Weights, path, int8, ckpt.Int8Weights);
            Step("LoadForInference (int8, prepack)");
        }
        var img = image is null ? new Data.Image(224, 224, 3, new byte[224 * 224 * 3]) : ImageCodecs.Decode(File.ReadAllBytes(image), image);
        using var batch = metadata.Preprocess!.ApplyBatch([img]);
        var x = new HostArray(batch.Shape, batch.ToArray());
        Step("decode + preprocess");
        model.Run(x);
        Step("forward 1 (JIT, first touch)");
        model.Run(x);
        Step("forward 2");
        model.Dispose();
        Console.WriteLine($"total since process start {(DateTime.Now - start).TotalMilliseconds:F0} ms (a second Classifier.Load is not in the steps)");
        return 0;
    }

    private static string Memory()
    {
        string rss = "?", hwm = "?", file = "?";
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:")) rss = Mb(line);
            else if (line.StartsWith("VmHWM:")) hwm = Mb(line);
            else if (line.StartsWith("RssFile:")) file = Mb(line);
        }
        return $"RSS {rss,5} MB (file-backed {file,4})  peak {hwm,5} MB  GC heap {GC.GetTotalMemory(false) >> 20,4} MB";
        static string Mb(string line) => (long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) >> 10).ToString();
    }
}
