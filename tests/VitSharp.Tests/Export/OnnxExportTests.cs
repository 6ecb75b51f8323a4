using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Export;
using VitSharp.Models;
using VitSharp.Tests.Cli;

namespace VitSharp.Tests.Export;

/// <summary>ONNX Runtime (its C# package Microsoft.ML.OnnxRuntime, a test-only dependency) runs our exported models
/// to the reference logits and to VitSharp's own outputs.</summary>
public class OnnxExportTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-onnx-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    /// <summary>Why ONNX Runtime cannot run here (its native library did not load), or null when it can.</summary>
    public static string? OrtUnavailable { get; } = Probe();

    private static string? Probe()
    {
        try
        {
            using var options = new SessionOptions();
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or OnnxRuntimeException or EntryPointNotFoundException)
        {
            return $"ONNX Runtime's native library did not load: {e.Message.Split('\n')[0]}";
        }
    }

    private HostArray RunOrt(string model, HostArray input) => RunOrt(model, input, _tmp);

    /// <summary>Runs an ONNX model in ONNX Runtime (in process, CPU, one thread, all graph optimisations) on
    /// <paramref name="input"/>; returns the first output. <paramref name="dir"/> is unused (kept for callers).</summary>
    public static HostArray RunOrt(string model, HostArray input, string dir)
    {
        _ = dir;
        using var options = new SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(model, options);
        var name = session.InputMetadata.Keys.Single();
        var tensor = new DenseTensor<float>(input.Data, input.Shape);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(name, tensor)]);
        var output = results.First().AsTensor<float>();
        return new HostArray(output.Dimensions.ToArray(), output.ToArray());
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

    /// <summary>A seeded ViT and Mixer written by `vit export`: ONNX Runtime's logits equal VitSharp's within 1e-4.</summary>
    [OrtTheory]
    [InlineData("vit")]
    [InlineData("mixer")]
    public void OnnxRuntimeMatchesVitSharpOnASeededModel(string arch)
    {
        ModelConfig config = arch == "vit"
            ? new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 48, Depth = 2, NumHeads = 3, MlpDim = 96, NumClasses = 5 }
            : new MixerConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 48, Depth = 2, TokenMlpDim = 24, ChannelMlpDim = 96, NumClasses = 5 };
        var file = Path.Combine(_tmp, arch + ".safetensors");
        Checkpoint.Save(file, config, Initializer.Init(config, seed: 11));
        var onnx = Path.Combine(_tmp, arch + ".onnx");
        var (code, _, err) = CliRunner.Run("export", "--checkpoint", file, "--output", onnx);
        Assert.True(code == 0, err);

        var rng = new Random(4);
        var input = new HostArray([3, 3, 32, 32], Enumerable.Range(0, 3 * 3 * 32 * 32).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray());
        using var model = Checkpoint.Load(file).CreateModel(CpuBackend.Instance);
        var ours = model.Run(input);
        var ort = RunOrt(onnx, input);
        Assert.Equal([3, 5], ort.Shape);
        Assert.InRange(TestData.MaxAbsDiff(ort, ours), 0, 1e-4f);
        Assert.True(ours.Data.Select(Math.Abs).Max() > 1e-2f, "logits are not all ~0 (the comparison means something)");
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

    /// <summary>A seeded ViT with CCT's convolutional tokenizer (two layers, 32² → 8×8 tokens), exported through the
    /// recorder: Conv (no bias), Relu and MaxPool nodes on NCHW values, then tokens; ONNX Runtime's logits equal
    /// VitSharp's within 1e-4 at batch 3 (the batch stays symbolic through the reshapes).</summary>
    [OrtFact]
    public void OnnxRuntimeMatchesVitSharpWithAConvTokenizer()
    {
        var config = new VitConfig
        {
            ImageSize = 32, PatchSize = 4, EmbedDim = 48, Depth = 2, NumHeads = 3, MlpDim = 96, NumClasses = 5,
            Pool = Pooling.Avg, FcNorm = true, ConvTokenizer = new ConvTokenizerConfig { Layers = 2, Channels = 16 },
        };
        var weights = Initializer.Init(config, seed: 12);
        var rng = new Random(8);
        foreach (ref var v in weights["head.weight"].Data.AsSpan()) v = (float)(rng.NextDouble() - 0.5);
        var (model, onnx, text) = SaveLoadAndExport("cct", config, weights);
        using var _ = model;
        foreach (var op in new[] { "Conv", "Relu", "MaxPool", "tokenizer.conv_layers.0.0.weight", "tokenizer.conv_layers.1.0.weight" }) Assert.Contains(op, text);
        Assert.DoesNotContain("patch_embed.proj", text);

        AssertOrtMatchesAtBatch3(model, onnx, rng);
    }

    /// <summary>CCT's sequence pooling (global_pool seq, no class token) records as MatMul/Add scores, Softmax over the
    /// tokens and a MatMul with the tokens; ONNX Runtime's logits equal VitSharp's within 1e-4 at batch 3.</summary>
    [OrtFact]
    public void OnnxRuntimeMatchesVitSharpWithSeqPooling()
    {
        var config = new VitConfig
        {
            ImageSize = 32, PatchSize = 4, EmbedDim = 48, Depth = 2, NumHeads = 3, MlpDim = 96, NumClasses = 5,
            ClassToken = false, Pool = Pooling.Seq, ConvTokenizer = new ConvTokenizerConfig { Layers = 2, Channels = 16 },
        };
        var weights = Initializer.Init(config, seed: 13);
        var rng = new Random(9);
        foreach (var name in new[] { "head.weight", "attention_pool.weight" })
            foreach (ref var v in weights[name].Data.AsSpan()) v = (float)(rng.NextDouble() - 0.5);
        var (model, onnx, text) = SaveLoadAndExport("cct_seq", config, weights);
        using var _ = model;
        foreach (var op in new[] { "Softmax", "attention_pool.weight", "attention_pool.bias" }) Assert.Contains(op, text);

        AssertOrtMatchesAtBatch3(model, onnx, rng);
    }

    /// <summary>Saves NAME.safetensors, loads it as a user would and exports NAME.onnx through the recorder; returns the
    /// loaded model (the caller disposes it), the ONNX file and its bytes as ASCII (to look for op and tensor names).</summary>
    private (VisionModel Model, string Onnx, string Text) SaveLoadAndExport(string name, ModelConfig config, IReadOnlyDictionary<string, HostArray> weights)
    {
        var file = Path.Combine(_tmp, name + ".safetensors");
        Checkpoint.Save(file, config, weights);
        var onnx = Path.Combine(_tmp, name + ".onnx");
        var model = Checkpoint.Load(file).CreateModel(CpuBackend.Instance);
        OnnxExporter.Export(model, onnx);
        return (model, onnx, System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(onnx)));
    }

    /// <summary>A random batch of three 32² images: ONNX Runtime's 5 logits each equal VitSharp's within 1e-4, and are not ~0.</summary>
    private void AssertOrtMatchesAtBatch3(VisionModel model, string onnx, Random rng)
    {
        var input = new HostArray([3, 3, 32, 32], Enumerable.Range(0, 3 * 3 * 32 * 32).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray());
        var ours = model.Run(input);
        var ort = RunOrt(onnx, input);
        Assert.Equal([3, 5], ort.Shape);
        Assert.InRange(TestData.MaxAbsDiff(ort, ours), 0, 1e-4f);
        Assert.True(ours.Data.Select(Math.Abs).Max() > 1e-2f, "logits are not all ~0 (the comparison means something)");
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
        if (OnnxExportTests.OrtUnavailable is { } why) Skip = why;
    }
}

public sealed class OrtTheoryAttribute : TheoryAttribute
{
    public OrtTheoryAttribute()
    {
        if (OnnxExportTests.OrtUnavailable is { } why) Skip = why;
    }
}
