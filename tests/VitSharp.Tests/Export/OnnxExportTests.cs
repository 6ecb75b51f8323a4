using System.Diagnostics;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Export;
using VitSharp.Tests.Cli;

namespace VitSharp.Tests.Export;

/// <summary>ONNX Runtime (onnxruntime-node 1.30, a test tool) runs our exported models to the reference logits.</summary>
public class OnnxExportTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-onnx-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    /// <summary>Where onnxruntime-node is installed: $VITSHARP_ORT_DIR, else /tmp/ort (what .ci/run installs).</summary>
    public static string? OrtDir
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("VITSHARP_ORT_DIR") ?? "/tmp/ort";
            return Directory.Exists(Path.Combine(dir, "node_modules", "onnxruntime-node")) ? dir : null;
        }
    }

    private HostArray RunOrt(string model, HostArray input) => RunOrt(model, input, _tmp);

    /// <summary>Runs an ONNX model under onnxruntime-node (bench/peers' ort_run.js) on <paramref name="input"/>; scratch files in <paramref name="dir"/>.</summary>
    public static HostArray RunOrt(string model, HostArray input, string dir)
    {
        var inPath = Path.Combine(dir, "in.f32");
        var outPath = Path.Combine(dir, "out.f32");
        File.WriteAllBytes(inPath, System.Runtime.InteropServices.MemoryMarshal.AsBytes(input.Data.AsSpan()).ToArray());
        var psi = new ProcessStartInfo("node", [Path.Combine(AppContext.BaseDirectory, "Tools", "ort_run.js"), OrtDir!, model, inPath,
            string.Join(",", input.Shape), outPath]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), "onnxruntime did not finish");
        Assert.True(p.ExitCode == 0, stderr);
        var bytes = File.ReadAllBytes(outPath);
        var data = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, data, 0, bytes.Length);
        var dims = System.Text.Json.JsonSerializer.Deserialize<int[]>(stdout.Trim().Split(' ', 2)[1])!;
        return new HostArray(dims, data);
    }

    [OrtTheory]
    [InlineData("vit_tiny48", "model.safetensors", 2)]
    [InlineData("vit_tiny48_gap", "model.safetensors", 2)]
    [InlineData("vit_tiny48", "model_google.npz", 0)]
    [InlineData("mixer_tiny48", "model.safetensors", 0)]
    public void OnnxRuntimeReproducesTheReferenceLogits(string folder, string file, int heads)
    {
        var dir = TestData.Small(folder);
        var ckpt = Checkpoint.Load(Path.Combine(dir, file), new LoadOptions { Heads = heads == 0 ? null : heads });
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var onnx = Path.Combine(_tmp, "m.onnx");
        OnnxExporter.Export(model, onnx);
        var logits = RunOrt(onnx, Npy.Read(Path.Combine(dir, "input.npy")));
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(Path.Combine(dir, "logits.npy"))), 0, 1e-4f);
    }

    /// <summary>The family options record into the same graph: ONNX Runtime reproduces timm's / vit-pytorch's logits.</summary>
    [OrtTheory]
    [InlineData("deit_distilled", "model.safetensors", 2, null)]
    [InlineData("vit_reg4", "model.safetensors", 2, null)]
    [InlineData("vit_layerscale_qknorm", "model.safetensors", 2, null)]
    [InlineData("vit_siglip_map", "model.safetensors", 2, "tanh")]
    [InlineData("vit_dinov2_reg", "model.safetensors", 2, null)]
    [InlineData("vit_clip_quickgelu", "model.safetensors", 2, "quick_gelu")]
    [InlineData("vit_avg_nocls", "model.safetensors", 2, null)]
    [InlineData("vit_no_qkv_bias_relu", "model.safetensors", 2, "relu")]
    [InlineData("lucid_vit", "model.pt", 4, null)]
    [InlineData("lucid_simple_vit", "model.pt", 2, null)]
    public void FamilyExportsReproduceTheReferenceLogits(string folder, string file, int heads, string? act)
    {
        var dir = Models.FamilyParityTests.Dir(folder);
        var ckpt = Checkpoint.Load(Path.Combine(dir, file), new LoadOptions
        {
            Heads = heads, ImageSize = 32, Gelu = VitSharp.Models.ModelConfig.ParseActivation(act), LayerNormEps = act == "quick_gelu" ? 1e-5f : null,
        });
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var onnx = Path.Combine(_tmp, folder + ".onnx");
        OnnxExporter.Export(model, onnx);
        var logits = RunOrt(onnx, Npy.Read(Path.Combine(dir, "input.npy")));
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(Path.Combine(dir, "logits.npy"))), 0, 1e-4f);
    }

    [OrtFact]
    public void ExportCommandWritesAModelForAnotherResolutionAndBatch()
    {
        var onnx = Path.Combine(_tmp, "at80.onnx");
        var (code, _, err) = CliRunner.Run("export", "--checkpoint", TestData.Small("vit_tiny48", "model.safetensors"), "--heads", "2",
            "--img-size", "80", "--output", onnx);
        Assert.True(code == 0, err);
        var input = Npy.Read(TestData.Small("vit_tiny48_at80", "input.npy"));
        var logits = RunOrt(onnx, input);
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(TestData.Small("vit_tiny48_at80", "logits.npy"))), 0, 1e-4f);
        // Batch 1 through the same (dynamic-batch) graph.
        var one = new HostArray([1, .. input.Shape[1..]], input.Data[..(input.Data.Length / input.Shape[0])]);
        var single = RunOrt(onnx, one);
        Assert.Equal(logits.Data[..single.Data.Length], single.Data, (a, b) => Math.Abs(a - b) < 1e-5f);
    }

    [Fact]
    public void ProtobufVarintsAndLengthsAreEncodedPerTheSpec()
    {
        var w = new ProtoWriter();
        w.Varint(1, 300);             // tag 0x08, 300 = 0xAC 0x02
        w.String(2, "hi");            // tag 0x12, length 2
        w.PackedInt64(3, [1, -1]);    // -1 as a ten-byte varint
        var bytes = w.ToArray();
        Assert.Equal(new byte[] { 0x08, 0xAC, 0x02, 0x12, 0x02, (byte)'h', (byte)'i', 0x1A, 11, 0x01,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, bytes);
    }
}

public sealed class OrtFactAttribute : FactAttribute
{
    public OrtFactAttribute()
    {
        if (OnnxExportTests.OrtDir is null) Skip = "needs node and onnxruntime-node (npm install --ignore-scripts onnxruntime-node@1.30.0 in /tmp/ort, or set VITSHARP_ORT_DIR)";
    }
}

public sealed class OrtTheoryAttribute : TheoryAttribute
{
    public OrtTheoryAttribute()
    {
        if (OnnxExportTests.OrtDir is null) Skip = "needs node and onnxruntime-node (npm install --ignore-scripts onnxruntime-node@1.30.0 in /tmp/ort, or set VITSHARP_ORT_DIR)";
    }
}
