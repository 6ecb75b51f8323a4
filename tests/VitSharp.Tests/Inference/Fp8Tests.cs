using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Backends.Cuda.Testing;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Tests.Cli;
using VitSharp.Tests.Cuda;
using Xunit.Abstractions;

namespace VitSharp.Tests.Inference;

/// <summary>FP8 E4M3: the host codec the GPU's conversions are checked against, and `--dtype fp8`'s errors off the GPU.</summary>
[Collection("cli")]
public class Fp8Tests(ITestOutputHelper output)
{
    [Fact]
    public void EveryCodeDecodesAndReencodesToItself()
    {
        for (int c = 0; c < 256; c++)
        {
            var v = Fp8.ToFloat((byte)c);
            if ((c & 0x7F) == 0x7F) { Assert.True(float.IsNaN(v)); Assert.Equal(Fp8.NaN, Fp8.FromFloat(v)); continue; }
            Assert.Equal((byte)c, Fp8.FromFloat(v));
        }
        Assert.Equal(448f, Fp8.ToFloat(0x7E));
        Assert.Equal(-448f, Fp8.ToFloat(0xFE));
        Assert.Equal(1f / 512, Fp8.ToFloat(0x01));   // smallest subnormal
        Assert.Equal(1f / 64, Fp8.ToFloat(0x08));    // smallest normal
        Assert.Equal(1f, Fp8.ToFloat(0x38));
    }

    [Fact]
    public void RoundsToNearestEvenAndSaturates()
    {
        // between consecutive positive finite codes: below the midpoint → lower, above → upper, at it → the even code
        for (int c = 0; c < 0x7E; c++)
        {
            float lo = Fp8.ToFloat((byte)c), hi = Fp8.ToFloat((byte)(c + 1));
            float mid = (lo + hi) / 2;   // exact in fp32
            Assert.Equal((byte)c, Fp8.FromFloat(MathF.BitDecrement(mid)));
            Assert.Equal((byte)(c + 1), Fp8.FromFloat(MathF.BitIncrement(mid)));
            Assert.Equal((byte)((c & 1) == 0 ? c : c + 1), Fp8.FromFloat(mid));
            Assert.Equal((byte)(0x80 | Fp8.FromFloat(mid)), Fp8.FromFloat(-mid));
        }
        Assert.Equal(0x7E, Fp8.FromFloat(449f));
        Assert.Equal(0x7E, Fp8.FromFloat(1e30f));
        Assert.Equal(0x7E, Fp8.FromFloat(float.PositiveInfinity));   // satfinite, as cvt.rn.satfinite
        Assert.Equal(0xFE, Fp8.FromFloat(float.NegativeInfinity));
        Assert.Equal(0x00, Fp8.FromFloat(1f / 1025));                 // under half the smallest subnormal
        Assert.Equal(0x80, Fp8.FromFloat(-0f));
    }

    [Fact]
    public void PerTensorQuantisationMapsTheLargestValueOnto448()
    {
        var rng = new Random(3);
        var x = Enumerable.Range(0, 1000).Select(_ => (float)(rng.NextDouble() * 2 - 1) * 7.5f).ToArray();
        x[17] = -9.25f;
        var (codes, scale) = Fp8.Quantize(x);
        Assert.Equal(9.25f / 448, scale);
        Assert.Equal(0xFE, codes[17]);
        var back = Fp8.Decode(codes, scale);
        // E4M3 keeps 3 mantissa bits: each normal value within 2⁻⁴ of itself, relatively
        for (int i = 0; i < x.Length; i++)
            if (MathF.Abs(x[i]) >= scale / 64) Assert.True(MathF.Abs(back[i] - x[i]) <= MathF.Abs(x[i]) / 16 + 1e-7f, $"{x[i]} -> {back[i]}");
        var (zeros, one) = Fp8.Quantize(new float[4]);
        Assert.Equal(new byte[4], zeros);
        Assert.Equal(1f, one);
    }

    [Fact]
    public void CalibrationRecordsTheLargestInputOfEveryBlockLinear()
    {
        var config = new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 2, NumHeads = 2, MlpDim = 64, NumClasses = 5 };
        using var model = VisionModel.Create(config, CpuBackend.Instance);
        model.Load(Initializer.Init(config, 1), "test");
        var rng = new Random(5);
        var images = new HostArray([2, 3, 32, 32], Enumerable.Range(0, 2 * 3 * 32 * 32).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
        var absMax = model.CalibrateInputs([images]);
        Assert.Equal(model.Int8Targets.Order(), absMax.Keys.Order());
        Assert.All(absMax.Values, v => Assert.True(v > 0 && float.IsFinite(v)));
        // the recorder passes every op through: the logits are the plain forward's
        var plain = model.Run(images).Data;
        var again = model.Run(images).Data;
        Assert.Equal(plain, again);
        var e = Assert.Throws<VitSharpException>(() => model.UseFp8(absMax));
        Assert.Contains("CUDA", e.Message);
    }

    [Fact]
    public void Fp8OffTheGpuIsAOneLineError()
    {
        var (code, _, err) = CliRunner.Run("bench", "--model", "vit_tiny_patch16_224", "--dtype", "fp8", "--batch-size", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("fp8 runs on CUDA", err);
        Assert.Single(err.Trim().Split('\n'));
        // the per-op profile would time a bf16 model of its own and call it fp8
        (code, _, err) = CliRunner.Run("bench", "--model", "vit_tiny_patch16_224", "--dtype", "fp8", "--profile", "--batch-size", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("--profile times the bf16 forward", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [CudaFact]
    public void Fp8KernelsMatchTheHostEmulation()
    {
        var results = CudaFp8SelfTest.Run(Path.Combine(AppContext.BaseDirectory, "Data", "refs-small"));
        foreach (var r in results) output.WriteLine(r.ToString());
        Assert.All(results, r => Assert.True(r.Pass, r.ToString()));
    }
}
