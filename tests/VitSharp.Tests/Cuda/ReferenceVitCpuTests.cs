using VitSharp.Backends.Cpu;
using VitSharp.Backends.Cuda.Testing;

namespace VitSharp.Tests.Cuda;

/// <summary>The self-test's ViT forward is itself checked on the CPU against timm's logits (no GPU needed).</summary>
public class ReferenceVitCpuTests
{
    [Theory]
    [InlineData("vit_tiny48")]
    [InlineData("vit_tiny48_gap")]
    public void CpuForwardMatchesTimmLogits(string model)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "Data", "refs-small", model);
        var meta = File.ReadAllText(Path.Combine(dir, "meta.json"));
        var shape = new VitShape(48, 16, 64, 2, 2, 10, AvgPool: meta.Contains("\"avg\""));
        var weights = RefFiles.ReadSafetensors(Path.Combine(dir, "model.safetensors"));
        var (input, inShape) = RefFiles.ReadNpy(Path.Combine(dir, "input.npy"));
        var (want, _) = RefFiles.ReadNpy(Path.Combine(dir, "logits.npy"));
        var cpu = CpuBackend.Instance;
        using var vit = new ReferenceVit(cpu, shape, weights);
        using var img = Tensors.Tensor.FromArray(input, inShape);
        var got = vit.Forward(img).ToArray();
        var (rel, _) = CudaSelfTest.Compare(got, want);
        Assert.True(rel < 1e-5, $"relative error {rel:E2}");
    }
}
