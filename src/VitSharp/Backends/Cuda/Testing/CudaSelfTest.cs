using System.Diagnostics;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda.Testing;

/// <summary>
/// GPU checks callable from the xunit tests ([CudaFact]) and from `vit cuda-selftest` on a machine without .NET SDK:
/// every CudaBackend op against CpuBackend on fresh random inputs (outputs start as random data, so an unwritten
/// element shows), graph replay against eager, and whole-model logits against the reference files.
/// Error = ‖gpu − cpu‖₂ / ‖cpu‖₂. In BF16 the inputs are rounded to bf16 before both sides see them, so the error
/// measures the GPU's arithmetic (bf16 outputs and intermediates, fp32 accumulation), not the input rounding.
/// </summary>
public static class CudaSelfTest
{
    /// <summary>One CUDA kernel checked against the CPU reference: relative and absolute error against its tolerance.</summary>
    public sealed record Result(string Name, double RelErr, double MaxAbs, double Tolerance, string Note = "")
    {
        public bool Pass => RelErr <= Tolerance && !double.IsNaN(RelErr);
        public override string ToString() =>
            $"{(Pass ? "PASS" : "FAIL")}  {Name,-48} rel {RelErr:E2}  maxabs {MaxAbs:E2}  tol {Tolerance:E0}  {Note}";
    }

    public const double F32Tolerance = 1e-5, Bf16Tolerance = 1e-2;

    private sealed record Case(string Name, (int[] Shape, float Scale)[] Inputs, int[][] Outputs, Action<IBackend, Tensor[], Tensor[]> Op,
        DType[]? OutputTypes = null);

    public static List<Result> OpParity(DType dtype, int seed = 1234)
    {
        var cases = new List<Case>();
        void Lin(string name, int m, int k, int n, bool bias, Activation act, bool acc = false) =>
            cases.Add(new($"Linear {name} {m}x{k}->{n}{(bias ? " +b" : "")} {act}{(acc ? " +=" : "")}",
                bias ? [([m, k], 1), ([n, k], 0.1f), ([n], 0.5f)] : [([m, k], 1), ([n, k], 0.1f)], [[m, n]],
                (be, i, o) => be.Linear(i[0], i[1], bias ? i[2] : null, o[0], act, acc)));
        Lin("qkv", 394, 192, 576, true, Activation.None);
        Lin("fc1", 394, 192, 768, true, Activation.Gelu);
        Lin("fc1", 394, 192, 768, true, Activation.GeluTanh);
        Lin("tanh", 130, 64, 96, true, Activation.Tanh);
        Lin("proj", 394, 768, 192, true, Activation.None, acc: true);
        Lin("nobias", 256, 128, 64, false, Activation.None);
        Lin("nobias-gelu", 256, 128, 64, false, Activation.GeluTanh);
        Lin("odd", 5, 24, 10, true, Activation.None);
        // Views one element into their storage (parameters packed in one buffer after an odd-sized tensor).
        foreach (var acc in new[] { false, true })
            cases.Add(new($"Linear misaligned views 18x64->256 +b{(acc ? " +=" : " Gelu")}",
                [([18 * 64 + 1], 1), ([256 * 64 + 1], 0.1f), ([256 + 1], 0.5f)], [[18 * 256 + 1]],
                (be, i, o) => be.Linear(i[0].View([18, 64], 1), i[1].View([256, 64], 1), i[2].View([256], 1), o[0].View([18, 256], 1),
                    acc ? Activation.None : Activation.Gelu, acc)));

        foreach (var (rows, d) in new[] { (394, 192), (64, 512), (394, 768), (33, 1024), (20, 1280), (50, 100), (7, 2000) })
            cases.Add(new($"LayerNorm {rows}x{d}", [([rows, d], 2), ([d], 1), ([d], 1)], [[rows, d]],
                (be, i, o) => be.LayerNorm(i[0], i[1], i[2], 1e-6f, o[0])));
        foreach (var n in new[] { 4096, 1001 })
            cases.Add(new($"Add {n}", [([n], 1), ([n], 1)], [[n]], (be, i, o) => be.Add(i[0], i[1], o[0])));
        foreach (var act in new[] { Activation.Gelu, Activation.GeluTanh, Activation.Tanh, Activation.QuickGelu, Activation.Relu, Activation.Silu, Activation.None })
            foreach (var n in new[] { 4096, 999 })
                cases.Add(new($"Apply {act} {n}", [([n], 3)], [[n]], (be, i, o) => be.Apply(act, i[0], o[0])));

        void Att(int b, int n, int heads, int hd, bool probs, bool probsInComputeType = false)
        {
            float scale = 1f / MathF.Sqrt(hd);
            // Both flash-attention block shapes (4 and 8 warps) where the flash kernel applies.
            foreach (int warps in dtype == DType.BF16 && !probs ? new[] { 4, 8 } : new[] { 8 })
                cases.Add(new($"Attention B{b} N{n} H{heads} hd{hd}{(probs ? $" +probs {(probsInComputeType ? dtype : DType.F32)}" : "")}" +
                              $"{(dtype == DType.BF16 && !probs ? $" w{warps}" : "")}",
                    [([b, n, 3 * heads * hd], 1.5f)],
                    probs ? [[b, n, heads * hd], [b, heads, n, n]] : [[b, n, heads * hd]],
                    (be, i, o) =>
                    {
                        if (be is CudaBackend cb) cb.AttentionWarps = warps;
                        be.Attention(i[0], o[0], heads, scale, probs ? o[1] : null);
                    },
                    probs ? [dtype, probsInComputeType ? dtype : DType.F32] : null));
        }
        Att(2, 197, 3, 64, false);
        Att(2, 300, 2, 64, false);
        Att(2, 197, 2, 80, false);
        Att(3, 65, 2, 32, false);
        Att(1, 577, 2, 64, false);
        Att(2, 50, 4, 128, false);
        Att(2, 37, 3, 48, false);
        Att(2, 70, 2, 96, false);
        Att(1, 20, 1, 160, false);
        Att(2, 197, 3, 64, true);
        Att(2, 197, 3, 64, true, probsInComputeType: true); // what VisionTransformer asks for (attention maps)
        Att(3, 16, 2, 64, false);
        Att(2, 1, 2, 80, false);
        Att(1, 129, 1, 128, false);

        cases.Add(new("PatchEmbed B2 3x32x48 p8 D64", [([2, 3, 32, 48], 1), ([64, 3, 8, 8], 0.1f), ([64], 0.5f)], [[2, 24, 64]],
            (be, i, o) => be.PatchEmbed(i[0], i[1], i[2], o[0], 8)));
        cases.Add(new("PatchEmbed B2 3x20x20 p4 D32", [([2, 3, 20, 20], 1), ([32, 3, 4, 4], 0.1f), ([32], 0.5f)], [[2, 25, 32]],
            (be, i, o) => be.PatchEmbed(i[0], i[1], i[2], o[0], 4)));
        // CCT's convolutional tokenizer (Kernels/conv.cu): unfold of an image and of a channels-last map, the whole
        // convolution (unfold + product + ReLU, IBackend.Conv3x3's body), max pooling at even and odd sizes.
        cases.Add(new("Im2Col3x3 NCHW B2 3x32x32", [([2, 3, 32, 32], 1)], [[2, 1024, 27]], (be, i, o) => be.Im2Col3x3(i[0], o[0], 32, 32, true)));
        cases.Add(new("Im2Col3x3 NHWC B2 16x16x64", [([2, 256, 64], 1)], [[2, 256, 576]], (be, i, o) => be.Im2Col3x3(i[0], o[0], 16, 16, false)));
        cases.Add(new("Im2Col3x3 NHWC B3 7x5x10", [([3, 35, 10], 1)], [[3, 35, 90]], (be, i, o) => be.Im2Col3x3(i[0], o[0], 7, 5, false)));
        cases.Add(new("Conv3x3 NCHW B2 3x32x32->64 Relu", [([2, 3, 32, 32], 1), ([64, 3, 3, 3], 0.3f)], [[2, 1024, 27], [2, 1024, 64]],
            (be, i, o) => be.Conv3x3(i[0], i[1], o[0], o[1], 32, 32, true, Activation.Relu)));
        cases.Add(new("Conv3x3 NHWC B2 16x16x64->256 Relu", [([2, 256, 64], 1), ([256, 64, 3, 3], 0.05f)], [[2, 256, 576], [2, 256, 256]],
            (be, i, o) => be.Conv3x3(i[0], i[1], o[0], o[1], 16, 16, false, Activation.Relu)));
        cases.Add(new("MaxPool3x3s2 B2 32x32x64", [([2, 1024, 64], 1)], [[2, 256, 64]], (be, i, o) => be.MaxPool3x3s2(i[0], o[0], 32, 32)));
        cases.Add(new("MaxPool3x3s2 B3 7x5x10", [([3, 35, 10], 1)], [[3, 12, 10]], (be, i, o) => be.MaxPool3x3s2(i[0], o[0], 7, 5)));
        // CCT's sequence pooling (Kernels/seqpool.cu): softmax over the token scores and the weighted sum (weights F32, scratch here).
        foreach (var (b, n, d) in new[] { (4, 64, 256), (3, 17, 40) })
            cases.Add(new($"SeqPool B{b} N{n} D{d}", [([b, n, d], 1), ([b, n, 1], 3)], [[b, d]], (be, i, o) =>
            {
                using var w = be.Allocate([b, n], DType.F32);
                be.SeqPool(i[0], i[1], w, o[0]);
            }));
        cases.Add(new("Embed cls", [([2, 9, 64], 1), ([1, 1, 64], 1), ([1, 10, 64], 1)], [[2, 10, 64]],
            (be, i, o) => be.Embed(i[0], i[1], i[2], o[0])));
        cases.Add(new("Embed no cls", [([2, 9, 64], 1), ([1, 9, 64], 1)], [[2, 9, 64]],
            (be, i, o) => be.Embed(i[0], null, i[1], o[0])));
        cases.Add(new("MeanTokens from 1", [([3, 17, 40], 1)], [[3, 40]], (be, i, o) => be.MeanTokens(i[0], 1, o[0])));
        cases.Add(new("SelectToken 0", [([3, 17, 40], 1)], [[3, 40]], (be, i, o) => be.SelectToken(i[0], 0, o[0])));
        cases.Add(new("Transpose12 2x196x70", [([2, 196, 70], 1)], [[2, 70, 196]], (be, i, o) => be.Transpose12(i[0], o[0])));

        var results = new List<Result>();
        using var gpu = new CudaBackend(dtype);
        var rng = new Random(seed);
        foreach (var c in cases)
        {
            gpu.AttentionWarps = 8;
            try { results.Add(RunCase(c, gpu, dtype, rng)); }
            catch (Exception e) { results.Add(new Result(c.Name, double.NaN, double.NaN, 0, e.GetType().Name + ": " + e.Message)); }
        }
        results.Add(GraphReplay(gpu, rng));
        return results;
    }

    /// <summary>Uniform values in ±scale, rounded to bf16 first when the dtype is BF16 (both sides then see the same inputs).</summary>
    internal static float[] Random(Random rng, long n, float scale, DType dtype)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++)
        {
            float v = scale * (float)(rng.NextDouble() * 2 - 1);
            a[i] = dtype == DType.BF16 ? BFloat16Convert.ToFloat(BFloat16Convert.FromFloat(v)) : v;
        }
        return a;
    }

    private static Result RunCase(Case c, CudaBackend gpu, DType dtype, Random rng)
    {
        var ins = c.Inputs.Select(x => (Data: Random(rng, Shape.Count(x.Shape), x.Scale, dtype), x.Shape)).ToArray();
        var outInit = c.Outputs.Select(s => Random(rng, Shape.Count(s), 1, dtype)).ToArray();
        var cpu = CpuBackend.Instance;
        var ci = ins.Select(x => Tensor.FromArray(x.Data, x.Shape)).ToArray();
        var co = c.Outputs.Select((s, k) => Tensor.FromArray((float[])outInit[k].Clone(), s)).ToArray();
        c.Op(cpu, ci, co);
        var gi = ins.Select(x => { var t = gpu.Allocate(x.Shape, dtype); gpu.CopyFromHost(x.Data, t); return t; }).ToArray();
        var go = c.Outputs.Select((s, k) =>
        {
            var t = gpu.Allocate(s, c.OutputTypes?[k] ?? dtype);
            gpu.CopyFromHost(outInit[k], t);
            return t;
        }).ToArray();
        c.Op(gpu, gi, go);
        double worstRel = 0, worstAbs = 0;
        for (int k = 0; k < go.Length; k++)
        {
            var got = new float[go[k].Length];
            gpu.CopyToHost(go[k], got);
            var (rel, abs) = Compare(got, co[k].ToArray());
            worstRel = Math.Max(worstRel, rel);
            worstAbs = Math.Max(worstAbs, abs);
        }
        foreach (var t in ci.Concat(co).Concat(gi).Concat(go)) t.Dispose();
        return new Result($"{dtype} {c.Name}", worstRel, worstAbs, dtype == DType.BF16 ? Bf16Tolerance : F32Tolerance);
    }

    /// <summary>A captured graph of Linear → LayerNorm → Attention replays to the same bits as the eager ops.</summary>
    private static Result GraphReplay(CudaBackend gpu, Random rng)
    {
        var dt = gpu.ComputeType;
        int b = 2, n = 197, d = 192;
        using var x = gpu.Allocate([b, n, d], dt);
        using var w = gpu.Allocate([3 * d, d], dt);
        using var bias = gpu.Allocate([3 * d], dt);
        using var g = gpu.Allocate([3 * d], dt);
        using var qkv = gpu.Allocate([b, n, 3 * d], dt);
        using var y = gpu.Allocate([b, n, d], dt);
        gpu.CopyFromHost(Random(rng, x.Length, 1, dt), x);
        gpu.CopyFromHost(Random(rng, w.Length, 0.1f, dt), w);
        gpu.CopyFromHost(Random(rng, bias.Length, 0.1f, dt), bias);
        gpu.CopyFromHost(Random(rng, g.Length, 1, dt), g);
        void Body()
        {
            gpu.Linear(x, w, bias, qkv);
            gpu.LayerNorm(qkv, g, bias, 1e-6f, qkv);
            gpu.Attention(qkv, y, 3, 0.125f);
        }
        Body();
        var eager = new float[y.Length];
        gpu.CopyToHost(y, eager);
        gpu.CopyFromHost(new float[y.Length], y);
        using var graph = gpu.Capture(Body);
        graph.Launch();
        graph.Launch();
        var replay = new float[y.Length];
        gpu.CopyToHost(y, replay);
        var (rel, abs) = Compare(replay, eager);
        return new Result($"{dt} CUDA graph replay == eager", rel, abs, 0);
    }

    public static (double Rel, double MaxAbs) Compare(ReadOnlySpan<float> got, ReadOnlySpan<float> want)
    {
        double num = 0, den = 0, max = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double e = (double)got[i] - want[i];
            if (double.IsNaN(e)) return (double.NaN, double.NaN);
            num += e * e;
            den += (double)want[i] * want[i];
            max = Math.Max(max, Math.Abs(e));
        }
        return (Math.Sqrt(num / Math.Max(den, 1e-30)), max);
    }

    private static int[] Argmax(float[] logits, int classes) =>
        Enumerable.Range(0, logits.Length / classes)
            .Select(r => { int best = 0; for (int j = 1; j < classes; j++) if (logits[r * classes + j] > logits[r * classes + best]) best = j; return best; })
            .ToArray();

    /// <summary>
    /// Logits of the reference models in <paramref name="refsDir"/> (folders with meta.json, model.safetensors,
    /// input.npy, logits.npy) through VitSharp.Models (VisionTransformer, MlpMixer) on the CPU, the GPU in F32 and the GPU in BF16,
    /// against the stored (timm, fp32) logits.
    /// </summary>
    public static List<Result> ModelParity(string refsDir, string[] models)
    {
        var results = new List<Result>();
        foreach (var m in models)
        {
            var dir = Path.Combine(refsDir, m);
            if (!File.Exists(Path.Combine(dir, "meta.json"))) { results.Add(new Result($"model {m}", double.NaN, double.NaN, 0, $"missing {dir}")); continue; }
            var reference = Reference.Load(dir);
            var (config, refLogits) = (reference.Config, reference.Logits);
            var refTop = Argmax(refLogits, config.NumClasses);
            float[] Run(IBackend be) => reference.Run(be);
            var cpuLogits = Run(CpuBackend.Instance);
            var (r0, a0) = Compare(cpuLogits, refLogits);
            results.Add(new Result($"model {m} CPU F32 vs refs", r0, a0, 1e-4));
            using (var g32 = new CudaBackend(DType.F32))
            {
                var l = Run(g32);
                var (r1, a1) = Compare(l, refLogits);
                results.Add(new Result($"model {m} GPU F32 vs refs", r1, a1, 1e-4));
                var (r2, a2) = Compare(l, cpuLogits);
                results.Add(new Result($"model {m} GPU F32 vs CPU", r2, a2, 1e-4));
            }
            using (var g16 = new CudaBackend(DType.BF16))
            {
                var l = Run(g16);
                var (r3, a3) = Compare(l, refLogits);
                var top = Argmax(l, config.NumClasses);
                bool same = top.SequenceEqual(refTop);
                results.Add(new Result($"model {m} GPU BF16 vs refs", same ? r3 : double.NaN, a3, Bf16ModelTolerance,
                    $"top-1 {(same ? "same" : "DIFFERENT")} [{string.Join(",", top)}] vs [{string.Join(",", refTop)}]"));
            }
        }
        return results;
    }

    /// <summary>bf16 logits against fp32 ones after a whole network: measured 5e-3 to 9e-3 on the reference models.</summary>
    public const double Bf16ModelTolerance = 3e-2;

    /// <summary>A reference folder: the timm config from meta.json, weights, input and timm's logits.</summary>
    public sealed record Reference(string Name, ModelConfig Config, Dictionary<string, HostArray> Weights, HostArray Input, float[] Logits)
    {
        public static Reference Load(string dir)
        {
            var weights = RefFiles.ReadSafetensors(Path.Combine(dir, "model.safetensors"))
                .ToDictionary(kv => kv.Key, kv => new HostArray(kv.Value.Shape, kv.Value.Data));
            var (input, inShape) = RefFiles.ReadNpy(Path.Combine(dir, "input.npy"));
            var (logits, _) = RefFiles.ReadNpy(Path.Combine(dir, "logits.npy"));
            return new Reference(Path.GetFileName(dir), ReadConfig(Path.Combine(dir, "meta.json"), weights), weights, new HostArray(inShape, input), logits);
        }

        /// <summary>Logits of VitSharp's VisionTransformer with these weights on <paramref name="be"/>.</summary>
        public float[] Run(IBackend be)
        {
            using var model = VisionModel.Create(Config, be);
            model.Load(Weights, Name);
            return model.Run(Input).Data;
        }
    }

    /// <summary>The model a reference folder's meta.json describes (timm constructor arguments); a Mixer's MLP widths
    /// come from its weight shapes.</summary>
    private static ModelConfig ReadConfig(string metaPath, Dictionary<string, HostArray> weights)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(metaPath));
        bool mixer = doc.RootElement.TryGetProperty("timm_mlp_mixer_kwargs", out var k);
        if (!mixer) k = doc.RootElement.GetProperty("timm_vit_kwargs");
        int I(string n) => k.GetProperty(n).GetInt32();
        int d = I("embed_dim");
        if (mixer)
            return new MixerConfig
            {
                ImageSize = I("img_size"), PatchSize = I("patch_size"), EmbedDim = d, Depth = I("num_blocks"), NumClasses = I("num_classes"),
                TokenMlpDim = weights["blocks.0.mlp_tokens.fc1.weight"].Shape[0],
                ChannelMlpDim = weights["blocks.0.mlp_channels.fc1.weight"].Shape[0],
            };
        bool avg = k.TryGetProperty("global_pool", out var gp) && gp.GetString() == "avg";
        return new VitConfig
        {
            ImageSize = I("img_size"), PatchSize = I("patch_size"), EmbedDim = d, Depth = I("depth"), NumHeads = I("num_heads"),
            NumClasses = I("num_classes"), MlpDim = 4 * d, Pool = avg ? Pooling.Avg : Pooling.Token, FcNorm = avg,
        };
    }

    /// <summary>Prints a report and returns whether everything passed.</summary>
    public static bool RunAll(string? refsDir, TextWriter log)
    {
        if (!CudaBackend.IsAvailable(out var why)) { log.WriteLine("CUDA unavailable: " + why); return false; }
        var sw = Stopwatch.StartNew();
        var ctx = CudaContext.Get();
        log.WriteLine($"device: {ctx}; libraries: {string.Join(", ", Native.CudaLibraries.LoadedFrom.Select(kv => kv.Key + "=" + kv.Value))}");
        var all = new List<Result>();
        foreach (var dt in new[] { DType.F32, DType.BF16 })
            foreach (var r in OpParity(dt)) { log.WriteLine(r); all.Add(r); }
        foreach (var r in CudaFp8SelfTest.Run(refsDir)) { log.WriteLine(r); all.Add(r); }
        log.WriteLine($"NVRTC compile time {ctx.Kernels.CompileSeconds:F1}s");
        if (refsDir is not null)
        {
            var models = Directory.GetDirectories(refsDir).Select(Path.GetFileName)
                .Where(n => File.Exists(Path.Combine(refsDir, n!, "model.safetensors")) && File.Exists(Path.Combine(refsDir, n!, "logits.npy"))
                            && File.ReadAllText(Path.Combine(refsDir, n!, "meta.json")) is var meta
                            && (meta.Contains("timm_vit_kwargs") || meta.Contains("timm_mlp_mixer_kwargs")))
                .OrderBy(n => n).ToArray();
            foreach (var r in ModelParity(refsDir, models!)) { log.WriteLine(r); all.Add(r); }
        }
        int failed = all.Count(r => !r.Pass);
        log.WriteLine($"{all.Count - failed}/{all.Count} passed in {sw.Elapsed.TotalSeconds:F1}s");
        return failed == 0;
    }
}
