using VitSharp.Backends.Cpu;
using VitSharp.Backends.Cuda.Testing;

namespace VitSharp.Tests.Cuda;

/// <summary>The GPU self-test's reference loading (meta.json → config, weights, input) checked on the CPU, no GPU needed:
/// the model it builds reproduces timm's logits.</summary>
public class SelfTestReferenceTests
{
    [Theory]
    [InlineData("vit_tiny48")]
    [InlineData("vit_tiny48_gap")]
    [InlineData("mixer_tiny48")]
    public void ReferenceRunsToTimmLogitsOnTheCpu(string model)
    {
        var r = CudaSelfTest.Reference.Load(Path.Combine(AppContext.BaseDirectory, "Data", "refs-small", model));
        var (rel, _) = CudaSelfTest.Compare(r.Run(CpuBackend.Instance), r.Logits);
        Assert.True(rel < 1e-5, $"relative error {rel:E2}");
    }
}
