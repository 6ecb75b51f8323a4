using System.Runtime.Intrinsics.X86;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Cli;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Tests.Inference;

/// <summary>A test that needs the emitted 512-bit int8 kernel (AVX512-VNNI on Linux x86-64); skipped with the reason elsewhere.</summary>
public sealed class Avx512VnniFactAttribute : FactAttribute
{
    public Avx512VnniFactAttribute()
    {
        if (!Int8ZmmKernel.IsSupported)
            Skip = Int8ZmmKernel.HasAvx512Vnni() ? "the 512-bit int8 kernel is emitted on Linux x86-64 only (or VITSHARP_NO_JIT_KERNELS=1 is set)"
                : "needs a CPU with AVX512-VNNI (this one has none)";
    }
}

/// <summary>A test that needs the AVX-VNNI int8 dot-product instructions; skipped with the reason elsewhere.</summary>
public sealed class AvxVnniFactAttribute : FactAttribute
{
    public AvxVnniFactAttribute()
    {
        if (!AvxVnni.IsSupported) Skip = "needs a CPU with AVX-VNNI (this one has none): only the portable int8 kernel runs here";
    }
}

/// <summary>
/// int8 inference (docs/QUANTIZATION.md): the VNNI kernel against the portable one (bit-identical), the int8 product
/// against the fp32 one within a bound derived from the quantisation steps, the shipped model int8 against fp32 on the
/// committed CIFAR-10 slice, the quantised file's round trip, and a bad file's one-line errors.
/// </summary>
[Collection("cli")]
public sealed unsafe class QuantizationTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-int8-").FullName;
    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static string Slice => Path.Combine(AppContext.BaseDirectory, "Data", "cifar10-test-slice");

    private static float[] Random(int n, int seed, float scale = 1)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    private static float[] RunInt8(Int8Isa isa, int m, int n, int k, float[] x, Int8Matrix w, float[]? bias, Activation act, float[]? y0 = null)
    {
        var saved = Int8Gemm.Isa;
        Int8Gemm.Isa = isa;
        try
        {
            var y = y0 is null ? new float[m * n] : (float[])y0.Clone();
            fixed (float* xp = x, yp = y, bp = bias)
                Int8Gemm.Run(m, xp, k, w, yp, n, y0 is not null, bp, act);
            return y;
        }
        finally { Int8Gemm.Isa = saved; }
    }

    [AvxVnniFact]
    public void VnniKernelMatchesThePortableKernelBitForBit() => KernelMatchesThePortableKernel(Int8Isa.AvxVnni);

    [Avx512VnniFact]
    public void EmittedAvx512VnniKernelMatchesThePortableKernelBitForBit() => KernelMatchesThePortableKernel(Int8Isa.Avx512Vnni);

    private static void KernelMatchesThePortableKernel(Int8Isa isa)
    {
        // Shapes with every edge: M not a multiple of 6 or 8, N not of 16 or 32 (a 16-wide tail and a partial vector),
        // K not of 4; bias, GELU epilogue and accumulate.
        foreach (var (m, n, k) in new[] { (1, 16, 4), (7, 40, 13), (65, 576, 192), (197, 100, 387), (13, 32, 1536), (9, 48, 8), (200, 1152, 384) })
        {
            var x = Random(m * k, m + n + k);
            var wf = Random(n * k, 7 * n + k, 0.05f);
            using var w = Int8Matrix.Quantize(wf, n, k);
            var bias = Random(n, n);
            foreach (var act in new[] { Activation.None, Activation.Gelu })
            {
                var a = RunInt8(isa, m, n, k, x, w, bias, act);
                var b = RunInt8(Int8Isa.Scalar, m, n, k, x, w, bias, act);
                Assert.Equal(b, a);
            }
            var y0 = Random(m * n, 99);
            Assert.Equal(RunInt8(Int8Isa.Scalar, m, n, k, x, w, null, Activation.None, y0), RunInt8(isa, m, n, k, x, w, null, Activation.None, y0));
        }
    }

    [Fact]
    public void Int8ProductIsWithinTheQuantisationBoundOfFp32()
    {
        // y = Σ x·w with x = s_m·q + e_x (|e_x| ≤ s_m/2) and w = S_n·Q + e_w (|e_w| ≤ S_n/2): the int8 product differs from
        // the fp32 one by at most Σ_k (|x|·S_n/2 + |w|·s_m/2 + s_m·S_n/4), plus float rounding (1e-5 relative here).
        int m = 37, n = 72, k = 200;
        var x = Random(m * k, 1);
        var wf = Random(n * k, 2, 0.1f);
        using var w = Int8Matrix.Quantize(wf, n, k);
        var isas = new List<Int8Isa> { Int8Isa.Scalar };
        if (AvxVnni.IsSupported) isas.Add(Int8Isa.AvxVnni);
        if (Int8ZmmKernel.IsSupported) isas.Add(Int8Isa.Avx512Vnni);
        foreach (var isa in isas)
        {
            var y = RunInt8(isa, m, n, k, x, w, null, Activation.None);
            double worst = 0;
            for (int r = 0; r < m; r++)
            {
                float sx = x.AsSpan(r * k, k).ToArray().Max(Math.Abs) / 127f;
                for (int c = 0; c < n; c++)
                {
                    double exact = 0, bound = 0;
                    for (int i = 0; i < k; i++)
                    {
                        exact += (double)x[r * k + i] * wf[c * k + i];
                        bound += Math.Abs(x[r * k + i]) * w.Scales[c] / 2 + Math.Abs(wf[c * k + i]) * sx / 2 + sx * w.Scales[c] / 4;
                    }
                    double err = Math.Abs(y[r * n + c] - exact);
                    Assert.True(err <= bound + 1e-5 * Math.Abs(exact) + 1e-6, $"({r},{c}) [{isa}]: |{y[r * n + c]} - {exact}| = {err} > {bound}");
                    worst = Math.Max(worst, err / bound);
                }
            }
            Assert.True(worst > 0.01, $"the bound is so loose ({worst}) that the test checks nothing"); // the error is real, and bounded
        }
    }

    [Fact]
    public void QuantiseRowsIsSymmetricPerChannel()
    {
        var w = new float[] { 1f, -0.5f, 0.25f, 0, 0, 0, -2f, 1f, 0.004f };
        var (q, s) = Int8Matrix.QuantizeRows(w, 3, 3);
        Assert.Equal([1f / 127, 0f, 2f / 127], s);
        Assert.Equal(new sbyte[] { 127, -64, 32, 0, 0, 0, -127, 64, 0 }, q); // -63.5 and 31.75 round half-even/nearest
    }

    [Fact]
    public void ShippedModelInt8AgreesWithFp32OnTheCommittedSlice()
    {
        // Measured on the 200-image slice: fp32 (the bf16 file's weights) 88.0 %, int8 88.0 %, 200/200 the same
        // top-1. Floors: int8 within 1.5 points of fp32, ≥ 97 % agreement; logits within 0.35 of fp32 (measured max ≈ 0.2).
        var path = DefaultModel.BundledPath;
        var (f32, _) = VitSharp.Training.Evaluator.EvaluateCheckpoint(path, Slice, null, 0, 64, null, CpuBackend.Instance);
        var (i8, _) = VitSharp.Training.Evaluator.EvaluateCheckpoint(path, Slice, null, 0, 64, null, CpuBackend.Instance, dtype: DType.I8);
        Assert.Equal(200, i8.Count);
        int same = f32.Predictions.Zip(i8.Predictions).Count(p => p.First == p.Second);
        Assert.True(same >= 194, $"int8 agrees with fp32 on {same}/200 images");
        Assert.True(Math.Abs(i8.Top1 - f32.Top1) <= 0.015, $"int8 top-1 {i8.Top1:P1} vs fp32 {f32.Top1:P1}");

        using var a = Classifier.Load(path);
        using var b = Classifier.Load(path, dtype: DType.I8);
        Assert.False(a.Model.IsInt8);
        Assert.True(b.Model.IsInt8);
        var images = Directory.EnumerateFiles(Slice, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(16)
            .Select(f => VitSharp.Data.Codecs.ImageCodecs.Decode(File.ReadAllBytes(f), f)).ToList();
        var la = a.Run(images, OutputKind.Logits);
        var lb = b.Run(images, OutputKind.Logits);
        float max = TestData.MaxAbsDiff(la, lb);
        Assert.True(max < 0.35f && max > 0, $"int8 logits differ from fp32 by {max}");
    }

    [Fact]
    public void QuantisedFileRoundTripsAndLoadsAsInt8()
    {
        var output = Path.Combine(_tmp, "int8.safetensors");
        var report = Quantization.QuantizeFile(DefaultModel.BundledPath, output);
        Assert.Equal(28, report.Tensors); // the shipped model's 7 blocks × qkv, proj, fc1, fc2
        var (entries, meta, _) = SafeTensors.ReadHeader(output);
        Assert.Equal("I8", entries.Single(e => e.Name == "blocks.0.attn.qkv.weight").DType);
        Assert.Equal([768], entries.Single(e => e.Name == "blocks.0.attn.qkv.weight_scale").Shape); // 3 × width 256
        Assert.Equal("F32", entries.Single(e => e.Name == "head.weight").DType);
        Assert.Contains("int8_dynamic_per_token", meta[ModelMetadata.MetadataKey]);

        var ckpt = Checkpoint.Load(output);
        Assert.Equal(28, ckpt.Int8Weights!.Count);
        // The stored int8 values are exactly those the fp32 model quantises to.
        var original = Checkpoint.Load(DefaultModel.BundledPath);
        var w = original.Weights["blocks.3.mlp.fc1.weight"];
        var (q, s) = Int8Matrix.QuantizeRows(w.Data, w.Shape[0], w.Shape[1]);
        Assert.Equal(q, ckpt.Int8Weights["blocks.3.mlp.fc1.weight"].Values);
        Assert.Equal(s, ckpt.Int8Weights["blocks.3.mlp.fc1.weight"].Scales);

        using var fromFile = Classifier.Load(output);
        using var onLoad = Classifier.Load(DefaultModel.BundledPath, dtype: DType.I8);
        Assert.True(fromFile.Model.IsInt8);
        var x = new HostArray([2, 3, 64, 64], Random(2 * 3 * 64 * 64, 5));
        Assert.Equal(onLoad.Model.Run(x).Data, fromFile.Model.Run(x).Data); // same int8 weights, same kernel: identical

        // Written again from the loaded file: the same bytes (the stored int8 values are kept, not re-derived).
        var again = Path.Combine(_tmp, "again.safetensors");
        Quantization.QuantizeFile(output, again);
        Assert.Equal(File.ReadAllBytes(output), File.ReadAllBytes(again));
        Assert.True(report.OutputBytes < new FileInfo(DefaultModel.BundledPath).Length, "int8 file larger than the bf16 one");
    }

    /// <summary>Rewrites a quantised file's header JSON and data through <paramref name="edit"/>.</summary>
    private string Edited(string name, Func<Dictionary<string, HostArray>, Dictionary<string, string>, Dictionary<string, string>, string?> edit)
    {
        var good = Path.Combine(_tmp, "good.safetensors");
        if (!File.Exists(good)) Quantization.QuantizeFile(DefaultModel.BundledPath, good);
        var (entries, meta, _) = SafeTensors.ReadHeader(good);
        var tensors = SafeTensors.Read(good);
        var dtypes = entries.ToDictionary(e => e.Name, e => e.DType);
        var error = edit(tensors, meta, dtypes);
        var path = Path.Combine(_tmp, name);
        SafeTensors.Write(path, tensors, meta, n => dtypes.GetValueOrDefault(n, "F32"));
        return path;
    }

    [Fact]
    public void BadQuantisedFilesAreOneLineErrorsNamingTheFile()
    {
        var wrongDtype = Edited("dtype.safetensors", (t, m, d) => { d["blocks.1.mlp.fc2.weight"] = "F32"; return null; });
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(wrongDtype));
        Assert.Contains(wrongDtype, e.Message);
        Assert.Contains("blocks.1.mlp.fc2.weight", e.Message);
        Assert.Contains("must be I8", e.Message);

        var noScale = Edited("scale.safetensors", (t, m, d) => { t.Remove("blocks.2.attn.proj.weight_scale"); return null; });
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(noScale));
        Assert.Contains(noScale, e.Message);
        Assert.Contains("missing its scale tensor 'blocks.2.attn.proj.weight_scale'", e.Message);

        var unknown = Edited("key.safetensors", (t, m, d) =>
        {
            m[ModelMetadata.MetadataKey] = m[ModelMetadata.MetadataKey].Replace("\"tensors\":", "\"zero_point\":0,\"tensors\":");
            return null;
        });
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(unknown));
        Assert.Contains(unknown, e.Message);
        Assert.Contains("unknown key 'quantization.zero_point'", e.Message);

        var scheme = Edited("scheme.safetensors", (t, m, d) =>
        {
            m[ModelMetadata.MetadataKey] = m[ModelMetadata.MetadataKey].Replace("int8_symmetric_per_output_channel", "int4");
            return null;
        });
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(scheme));
        Assert.Contains("'int4' is not 'int8_symmetric_per_output_channel'", e.Message);

        // An I8 tensor the record does not list is refused as a non-float weight.
        var unlisted = Edited("unlisted.safetensors", (t, m, d) =>
        {
            m[ModelMetadata.MetadataKey] = m[ModelMetadata.MetadataKey].Replace("\"blocks.0.attn.proj.weight\",", "");
            return null;
        });
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(unlisted));
        Assert.Contains("dtype I8 where a floating-point weight must be", e.Message);
        foreach (var p in new[] { wrongDtype, noScale, unknown, scheme, unlisted })
            Assert.DoesNotContain('\n', Assert.ThrowsAny<VitSharpException>(() => Checkpoint.Load(p)).Message);
    }
}
