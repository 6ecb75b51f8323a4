using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;
using static VitSharp.Backends.Cuda.Testing.CudaSelfTest;

namespace VitSharp.Backends.Cuda.Testing;

/// <summary>
/// FP8 checks for `vit cuda-selftest` (GPUs with FP8 tensor cores): the quantisation kernel against
/// <see cref="Fp8.Encode"/> bit for bit; FP8 Linear products against the host's emulation of the same arithmetic (both
/// operands rounded to E4M3 with the same scales, then an fp32 product: what is left is accumulation order and the bf16
/// output); and whole reference models in FP8 against bf16.
/// </summary>
public static class CudaFp8SelfTest
{
    /// <summary>FP8 products against their host emulation: bf16 output rounding and accumulation order (fast
    /// accumulation), as the bf16 Linear cases.</summary>
    public const double EmulationTolerance = 1e-2;

    /// <summary>Whole-model FP8 logits against bf16 ones (random-weight reference models; E4M3 keeps 3 mantissa bits).</summary>
    public const double ModelTolerance = 0.15;

    public static List<Result> Run(string? refsDir, int seed = 4321)
    {
        var results = new List<Result>();
        using var gpu = new CudaBackend(DType.BF16);
        if (!gpu.SupportsFp8(out var why)) { results.Add(new Result("FP8", 0, 0, 0, "skipped: " + why)); return results; }
        var rng = new Random(seed);
        foreach (var line in gpu.ProbeFp8(256, 256, 256)) results.Add(new Result(line, 0, 0, 0, ""));
        results.Add(Quantisation(gpu, rng));
        foreach (var (m, k, n, bias, act, acc) in new[]
        {
            (394, 192, 576, true, Activation.None, false), (394, 192, 768, true, Activation.GeluTanh, false),
            (394, 192, 768, true, Activation.Gelu, false), (394, 768, 192, true, Activation.None, true),
            (256, 128, 64, false, Activation.None, false), (1000, 1024, 4096, true, Activation.GeluTanh, false),
            (7, 64, 32, true, Activation.None, false),
        })
            results.Add(Linear(gpu, rng, m, k, n, bias, act, acc));
        results.Add(Fallback(gpu, rng));
        if (refsDir is not null)
            foreach (var dir in Directory.GetDirectories(refsDir).Order())
            {
                var meta = Path.Combine(dir, "meta.json");
                if (!File.Exists(meta) || !File.ReadAllText(meta).Contains("timm_vit_kwargs") || !File.Exists(Path.Combine(dir, "logits.npy"))
                    || !File.Exists(Path.Combine(dir, "model.safetensors"))) continue;
            {
                var reference = Reference.Load(dir);
                results.Add(Model(gpu, reference));
                results.Add(StoredFile(gpu, reference));
            }
            }
        return results;
    }

    private static float[] Bf16Random(Random rng, long n, float scale)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = BFloat16Convert.ToFloat(BFloat16Convert.FromFloat(scale * (float)(rng.NextDouble() * 2 - 1)));
        return a;
    }

    /// <summary>Random values over E4M3's whole range (subnormals to beyond ±448, exact ties, NaN), both kernels.</summary>
    private static Result Quantisation(CudaBackend gpu, Random rng)
    {
        var vals = new List<float> { 0f, -0f, 448f, -448f, 464f, 480f, 1e6f, float.PositiveInfinity, float.NegativeInfinity, float.NaN,
            1f / 1024, 3f / 1024, 1.0625f, 1.1875f, 240f, 232f, 0.0078125f, 0.013671875f };
        while (vals.Count < 4096) vals.Add(MathF.ScaleB((float)(rng.NextDouble() * 2 - 1), rng.Next(-14, 11)));
        var x = vals.Select(v => BFloat16Convert.ToFloat(BFloat16Convert.FromFloat(v))).ToArray();
        int bad = 0;
        foreach (var (len, inv) in new[] { (4096, 1f), (4093, 3.7f) })
        {
            using var t = gpu.Allocate([len], DType.BF16);
            gpu.CopyFromHost(x.AsSpan(0, len), t);
            var got = gpu.Fp8Codes(t, inv);
            var want = Fp8.Encode(x.AsSpan(0, len), inv);
            for (int i = 0; i < len; i++) if (got[i] != want[i]) bad++;
        }
        return new Result("FP8 quantise kernels == Fp8.Encode (codes)", bad, bad, 0, $"{bad} of 8189 codes differ");
    }

    private static Result Linear(CudaBackend gpu, Random rng, int m, int k, int n, bool bias, Activation act, bool acc)
    {
        var x = Bf16Random(rng, (long)m * k, 3);
        var w = Bf16Random(rng, (long)n * k, 0.1f);
        var b = Bf16Random(rng, n, 0.5f);
        var y0 = Bf16Random(rng, (long)m * n, 1);
        // the same quantisation the model would apply: weight per tensor, input with a calibrated scale (its own max)
        var (wq, ws) = Fp8.Quantize(w);
        float xs = Fp8.ScaleFor(x.Max(MathF.Abs));
        var xe = Fp8.Decode(Fp8.Encode(x, 1f / xs), xs);
        var we = Fp8.Decode(wq, ws);
        var cpu = CpuBackend.Instance;
        using var cx = Tensor.FromArray(xe, [m, k]);
        using var cw = Tensor.FromArray(we, [n, k]);
        using var cb = Tensor.FromArray(b, [n]);
        using var cy = Tensor.FromArray((float[])y0.Clone(), [m, n]);
        cpu.Linear(cx, cw, bias ? cb : null, cy, act, acc);
        using var gx = gpu.Allocate([m, k], DType.BF16);
        using var gw = gpu.Allocate([n, k], DType.BF16);
        using var gb = gpu.Allocate([n], DType.BF16);
        using var gy = gpu.Allocate([m, n], DType.BF16);
        gpu.CopyFromHost(x, gx); gpu.CopyFromHost(w, gw); gpu.CopyFromHost(b, gb); gpu.CopyFromHost(y0, gy);
        bool fp8 = gpu.UseFp8(gw, wq, ws, xs);
        long refusedBefore = gpu.Fp8Fallbacks;
        gpu.Linear(gx, gw, bias ? gb : null, gy, act, acc);
        // a product cuBLASLt refused at run time ran in bf16: it did not run FP8
        if (gpu.Fp8Fallbacks > refusedBefore) fp8 = false;
        var got = new float[(long)m * n];
        gpu.CopyToHost(gy, got);
        gpu.ReleaseFp8(gw);
        var (rel, abs) = Compare(got, cy.ToArray());
        // how far E4M3 itself moves the product (not checked: the price of FP8)
        using var fx = Tensor.FromArray(x, [m, k]);
        using var fw = Tensor.FromArray(w, [n, k]);
        using var fy = Tensor.FromArray((float[])y0.Clone(), [m, n]);
        cpu.Linear(fx, fw, bias ? cb : null, fy, act, acc);
        var (vsExact, _) = Compare(got, fy.ToArray());
        return new Result($"FP8 Linear {m}x{k}->{n}{(bias ? " +b" : "")} {act}{(acc ? " +=" : "")}", fp8 ? rel : double.NaN, abs,
            EmulationTolerance, fp8 ? $"vs unquantised {vsExact:E2}" : "did not run FP8");
    }

    /// <summary>A weight FP8 cannot take (in = 24, not a multiple of 16) stays on the bf16 product.</summary>
    private static Result Fallback(CudaBackend gpu, Random rng)
    {
        int m = 33, k = 24, n = 40;
        var x = Bf16Random(rng, m * k, 1);
        var w = Bf16Random(rng, n * k, 0.1f);
        using var gx = gpu.Allocate([m, k], DType.BF16);
        using var gw = gpu.Allocate([n, k], DType.BF16);
        using var gy = gpu.Allocate([m, n], DType.BF16);
        gpu.CopyFromHost(x, gx); gpu.CopyFromHost(w, gw);
        var (wq, ws) = Fp8.Quantize(w);
        bool taken = gpu.UseFp8(gw, wq, ws, 1f);
        gpu.Linear(gx, gw, null, gy);
        var got = new float[m * n];
        gpu.CopyToHost(gy, got);
        using var cx = Tensor.FromArray(x, [m, k]);
        using var cw = Tensor.FromArray(w, [n, k]);
        using var cy = CpuBackend.Instance.Allocate([m, n], DType.F32);
        CpuBackend.Instance.Linear(cx, cw, null, cy);
        var (rel, abs) = Compare(got, cy.ToArray());
        return new Result("FP8 fallback: 33x24->40 stays bf16", taken ? double.NaN : rel, abs, Bf16Tolerance, taken ? "FP8 took a k of 24" : "");
    }

    /// <summary>An FP8 checkpoint (<see cref="Inference.Quantization.WriteFp8"/>) written from a model calibrated at load,
    /// read back and run with its stored codes and scales (<see cref="VisionModel.UseFp8(IReadOnlyDictionary{string, Fp8Weight})"/>):
    /// the same FP8 model, so the same logits bit for bit (tolerance 0). The file's weights are the GPU model's own (bf16),
    /// so the layers outside FP8 load the same values too.</summary>
    private static Result StoredFile(CudaBackend gpu, Reference r)
    {
        var path = Path.Combine(Path.GetTempPath(), $"vitsharp-fp8-selftest-{Environment.ProcessId}-{r.Name}.safetensors");
        try
        {
            using var calibrated = VisionModel.Create(r.Config, gpu);
            calibrated.Load(r.Weights, r.Name);
            var absMax = calibrated.CalibrateInputs([r.Input]);
            int targets = calibrated.Int8Targets.Count();
            int layersA = calibrated.UseFp8(absMax);
            long refusedBefore = gpu.Fp8Fallbacks;
            var a = calibrated.Run(r.Input).Data;
            var md = new ModelMetadata { Config = r.Config, Preprocess = Data.Transforms.PreprocessRecipe.Timm(r.Config.ImageSize) };
            Inference.Quantization.WriteFp8(calibrated, md, path, absMax.ToDictionary(kv => kv.Key, kv => Fp8.ScaleFor(kv.Value)));
            var ckpt = Checkpoint.Load(path);
            using var stored = ckpt.CreateModel(gpu);
            int layersB = stored.UseFp8(ckpt.Fp8Weights!);
            var b = stored.Run(r.Input).Data;
            var (rel, abs) = Compare(b, a);
            // a layer left on bf16 runs the file's dequantised weights, not the originals: the comparison would not be exact
            bool all = layersA == targets && layersB == targets && gpu.Fp8Fallbacks == refusedBefore;
            return new Result($"model {r.Name} FP8 file vs calibrated at load", all ? rel : double.NaN, abs, 0,
                all ? $"{targets} FP8 layers from the file"
                    : gpu.Fp8Fallbacks > refusedBefore ? "FP8 refused by cuBLASLt" : $"{layersA}/{layersB} of {targets} layers FP8");
        }
        finally { File.Delete(path); }
    }

    private static Result Model(CudaBackend gpu, Reference r)
    {
        using var model = VisionModel.Create(r.Config, gpu);
        model.Load(r.Weights, r.Name);
        var bf16 = model.Run(r.Input).Data;
        int layers = model.UseFp8(model.CalibrateInputs([r.Input]));
        long refusedBefore = gpu.Fp8Fallbacks;
        var fp8 = model.Run(r.Input).Data;
        // a product cuBLASLt refused ran in bf16: the comparison would then measure nothing
        if (gpu.Fp8Fallbacks > refusedBefore) layers = 0;
        var (rel, abs) = Compare(fp8, bf16);
        int classes = r.Config.NumClasses, rows = bf16.Length / classes, same = 0;
        for (int i = 0; i < rows; i++)
        {
            int a = 0, b = 0;
            for (int j = 1; j < classes; j++)
            {
                if (bf16[i * classes + j] > bf16[i * classes + a]) a = j;
                if (fp8[i * classes + j] > fp8[i * classes + b]) b = j;
            }
            if (a == b) same++;
        }
        return new Result($"model {r.Name} FP8 vs BF16 ({(layers > 0 ? layers + " FP8 layers" : "FP8 refused")})", layers > 0 ? rel : double.NaN, abs, ModelTolerance,
            $"top-1 same for {same}/{rows}");
    }
}
