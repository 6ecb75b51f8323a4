using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;

namespace VitSharp.Tests.Checkpoints;

/// <summary>Every kind of bad checkpoint becomes a CheckpointException naming the file (and the tensor where there is one).</summary>
public class CheckpointErrorTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-ckpt-").FullName;
    private string Source => TestData.Small("vit_tiny48", "model.safetensors");

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string Write(string name, byte[] bytes)
    {
        var p = Path.Combine(_tmp, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    [Fact]
    public void EveryTruncationIsReportedNotCrashed()
    {
        var bytes = File.ReadAllBytes(Source);
        foreach (var n in new[] { 0, 3, 8, 9, 100, 1000, bytes.Length / 2, bytes.Length - 1 })
        {
            var p = Write($"t{n}.safetensors", bytes[..n]);
            var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(p));
            Assert.Equal(p, e.File);
        }
    }

    [Fact]
    public void CorruptHeaderIsReported()
    {
        var bytes = File.ReadAllBytes(Source);
        for (int i = 8; i < 200; i += 7) bytes[i] = (byte)'#';
        var p = Write("corrupt.safetensors", bytes);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(p));
        Assert.Contains("corrupt", e.Message);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        var w = SafeTensors.Read(Source);
        w.Remove("blocks.1.mlp.fc2.weight");
        var p = Path.Combine(_tmp, "missing.safetensors");
        SafeTensors.Write(p, w);
        var ckpt = Checkpoint.Load(p, new LoadOptions { Heads = 2 });
        var e = Assert.Throws<CheckpointException>(() => ckpt.CreateModel(CpuBackend.Instance));
        Assert.Equal("blocks.1.mlp.fc2.weight", e.TensorName);
        Assert.Contains(p, e.Message);
    }

    [Fact]
    public void MisshapenTensorIsNamed()
    {
        var w = SafeTensors.Read(Source);
        w["blocks.0.attn.proj.bias"] = new HostArray([63], new float[63]);
        var p = Path.Combine(_tmp, "misshapen.safetensors");
        SafeTensors.Write(p, w);
        var ckpt = Checkpoint.Load(p, new LoadOptions { Heads = 2 });
        var e = Assert.Throws<CheckpointException>(() => ckpt.CreateModel(CpuBackend.Instance));
        Assert.Equal("blocks.0.attn.proj.bias", e.TensorName);
        Assert.Contains("(63)", e.Message);
    }

    [Fact]
    public void TruncatedNpzIsReported()
    {
        var bytes = File.ReadAllBytes(TestData.Small("vit_tiny48", "model_google.npz"));
        var p = Write("t.npz", bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(p));
        Assert.Equal(p, e.File);
    }

    [Fact]
    public void NotACheckpointIsReported()
    {
        var p = Write("x.bin", "hello, world"u8.ToArray());
        Assert.Contains("unrecognised", Assert.Throws<CheckpointException>(() => Checkpoint.Load(p)).Message);
    }

    [Fact]
    public void WritesAreAtomicAndRoundTrip()
    {
        var w = SafeTensors.Read(Source);
        var p = Path.Combine(_tmp, "copy.safetensors");
        SafeTensors.Write(p, w, new Dictionary<string, string> { ["k"] = "v" });
        var back = SafeTensors.Read(p, out var meta);
        Assert.Equal("v", meta["k"]);
        foreach (var (k, v) in w) Assert.Equal(v.Data, back[k].Data);
        Assert.Empty(Directory.GetFiles(_tmp, "*.tmp"));
    }

    [Fact]
    public void NpyRoundTripsAndReadsFortranOrder()
    {
        var p = Path.Combine(_tmp, "a.npy");
        Npy.Write(p, new float[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        var a = Npy.Read(p);
        Assert.Equal([2, 3], a.Shape);
        Assert.Equal([1f, 2, 3, 4, 5, 6], a.Data);
        // The same matrix stored column-major.
        var bytes = File.ReadAllBytes(p);
        var text = System.Text.Encoding.Latin1.GetString(bytes).Replace("'fortran_order': False", "'fortran_order': True ");
        var f = System.Text.Encoding.Latin1.GetBytes(text);
        float[] colMajor = [1, 4, 2, 5, 3, 6];
        Buffer.BlockCopy(colMajor, 0, f, f.Length - 24, 24);
        var fp = Write("f.npy", f);
        Assert.Equal([1f, 2, 3, 4, 5, 6], Npy.Read(fp).Data);
    }
}

public class HalfPrecisionCheckpointTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-half-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Theory]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void HalfPrecisionWeightsReadBackAsTheRoundedValues(string dtype)
    {
        var w = SafeTensors.Read(TestData.Small("vit_tiny48", "model.safetensors"));
        var p = Path.Combine(_tmp, $"m.{dtype}.safetensors");
        SafeTensors.Write(p, w, dtype: dtype);
        var back = SafeTensors.Read(p);
        foreach (var (name, a) in w)
        {
            var expected = a.Data.Select(v => dtype == "F16" ? (float)(Half)v
                : VitSharp.Tensors.BFloat16Convert.ToFloat(VitSharp.Tensors.BFloat16Convert.FromFloat(v))).ToArray();
            Assert.Equal(expected, back[name].Data);
        }
        // And the model still runs from it, close to the fp32 logits (rounding of weights only).
        var ckpt = Checkpoint.Load(p, new LoadOptions { Heads = 2 });
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var logits = model.Run(Npy.Read(TestData.Small("vit_tiny48", "input.npy")));
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(TestData.Small("vit_tiny48", "logits.npy"))), 0, dtype == "F16" ? 2e-3f : 2e-2f);
    }
}

public class StrictLoadingTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-strict-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void UnknownTensorsAreRefusedByName()
    {
        var w = SafeTensors.Read(TestData.Small("vit_tiny48", "model.safetensors"));
        w["blocks.0.attn.relative_position_bias_table"] = new HostArray([9, 2], new float[18]); // BEiT-style, not a ViT option
        var p = Path.Combine(_tmp, "extra.safetensors");
        SafeTensors.Write(p, w);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(p, new LoadOptions { Heads = 2 }).CreateModel(CpuBackend.Instance));
        Assert.Contains("blocks.0.attn.relative_position_bias_table", e.Message);
    }
}
