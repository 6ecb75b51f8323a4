using VitSharp.Data.Codecs;

namespace VitSharp.Tests.Codecs;

/// <summary>The AVX2 IDCT, upsampling and colour conversion give the same samples as the scalar libjpeg transcriptions.</summary>
[Collection(nameof(JpegSimdTests))] // toggles a static switch: keep other JPEG tests from running beside it
public class JpegSimdTests
{
    [CpuFeatureFact("avx2")] // JpegIdctSimd.IsSupported
    public void SimdIdctMatchesScalarOnRandomBlocks()
    {
        var rng = new Random(5);
        var coef = new short[64]; var quant = new ushort[64];
        var a = new byte[64]; var b = new byte[64];
        int compared = 0;
        for (int t = 0; t < 20000; t++)
        {
            int acMax = t % 4 == 0 ? 2 : 8;
            for (int i = 0; i < 64; i++)
            {
                quant[i] = (ushort)rng.Next(1, 40);
                coef[i] = (short)(i == 0 ? rng.Next(-1024 / quant[0], 1016 / quant[0]) : (rng.Next(3) == 0 ? rng.Next(-acMax, acMax + 1) : 0));
            }
            // Only blocks whose output cannot leave libjpeg's non-wrapping range (|x| <= 383): each AC term adds at
            // most |F|/4 to a sample, the DC term |F|/8. Beyond it the C table wraps and SIMD saturates (corrupt data).
            int acSum = 0;
            for (int i = 1; i < 64; i++) acSum += Math.Abs(coef[i] * quant[i]);
            if (acSum > 1000) continue;
            JpegIdct.Transform(coef, quant, a, 8);
            JpegIdctSimd.Transform(coef, quant, b, 8);
            Assert.Equal(a, b);
            compared++;
        }
        Assert.True(compared > 5000, $"only {compared} blocks compared");
    }

    [Fact]
    public void SimdAndScalarDecodesAreIdentical()
    {
        var files = Directory.GetFiles(Path.Combine(TestEnv.DataDir, "fuzz"), "*.jpg");
        Assert.NotEmpty(files);
        foreach (var f in files)
        {
            var data = File.ReadAllBytes(f);
            var simd = ImageCodecs.Decode(data, f);
            try { JpegOutput.ForceScalar = true; Assert.Equal(simd.Pixels, ImageCodecs.Decode(data, f).Pixels); }
            finally { JpegOutput.ForceScalar = false; }
        }
    }
}
