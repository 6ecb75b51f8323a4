using VitSharp.Backends.Cuda;
using VitSharp.Backends.Cuda.Testing;
using VitSharp.Tensors;
using Xunit.Abstractions;

namespace VitSharp.Tests.Cuda;

/// <summary>Every CudaBackend op against CpuBackend on random inputs, and reference logits on the GPU (see CudaSelfTest).</summary>
public class CudaBackendTests(ITestOutputHelper output)
{
    [CudaTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void EveryOpMatchesTheCpuBackend(DType dtype)
    {
        var results = CudaSelfTest.OpParity(dtype);
        foreach (var r in results) output.WriteLine(r.ToString());
        Assert.All(results, r => Assert.True(r.Pass, r.ToString()));
    }

    [CudaFact]
    public void RefsSmallLogitsMatchOnTheGpu()
    {
        var refs = Path.Combine(AppContext.BaseDirectory, "Data", "refs-small");
        var results = CudaSelfTest.ModelParity(refs, ["vit_tiny48", "vit_tiny48_gap", "mixer_tiny48"]);
        foreach (var r in results) output.WriteLine(r.ToString());
        Assert.All(results, r => Assert.True(r.Pass, r.ToString()));
    }

    [CudaSharedFact]
    public void SharedRefsLogitsMatchOnTheGpu()
    {
        var refs = TestData.Shared("refs");
        var results = CudaSelfTest.ModelParity(refs, ["vit_s16_d3", "mixer_s16_d2"]);
        foreach (var r in results) output.WriteLine(r.ToString());
        Assert.All(results, r => Assert.True(r.Pass, r.ToString()));
    }

    [NoCudaFact]
    public void WithoutADriverTheBackendSaysWhy()
    {
        var e = Assert.ThrowsAny<Exception>(() => new CudaBackend());
        Assert.IsType<VitSharp.Backends.Cuda.Native.CudaUnavailableException>(e);
        Assert.Contains("CUDA", e.Message);
    }
}
