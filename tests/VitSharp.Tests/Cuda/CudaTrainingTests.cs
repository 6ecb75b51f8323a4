using VitSharp.Backends.Cuda.Testing;
using VitSharp.Tensors;
using Xunit.Abstractions;

namespace VitSharp.Tests.Cuda;

/// <summary>The CUDA training backend (see CudaTrainingSelfTest): every backward op, the loss, clipping and the
/// optimizer sweeps against the CPU backend; gradients and one AdamW step against PyTorch's; seeded determinism.
/// On the GPU machine, which has no .NET SDK, the same checks run as `vit cuda-selftest --train …`.</summary>
public class CudaTrainingTests(ITestOutputHelper output)
{
    private void AllPass(IEnumerable<CudaSelfTest.Result> results)
    {
        var list = results.ToList();
        foreach (var r in list) output.WriteLine(r.ToString());
        Assert.All(list, r => Assert.True(r.Pass, r.ToString()));
    }

    [CudaTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void EveryTrainingOpMatchesTheCpuBackend(DType dtype) => AllPass(CudaTrainingSelfTest.OpParity(dtype));

    [CudaFact]
    public void TinyVitGradientsMatchPyTorchOnTheGpu() => AllPass(CudaTrainingSelfTest.GradientParity(TestData.Small("vit_tiny32_train")));

    [CudaSharedFact]
    public void P4VitGradientsMatchPyTorchOnTheGpu() => AllPass(CudaTrainingSelfTest.GradientParity(TestData.Shared("refs", "vit_p4_train")));

    [CudaTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void SeededStepsAreDeterministic(DType dtype) => AllPass([CudaTrainingSelfTest.Determinism(dtype)]);

    [CudaTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void ReplayedStepsGiveTheEagerWeightsBitForBit(DType dtype) => AllPass([CudaTrainingSelfTest.GraphReplay(dtype)]);

    [CudaTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void DistillationStepsMatchTheCpuAndReplay(DType dtype) => AllPass(CudaTrainingSelfTest.DistillationChecks(dtype));

    /// <summary>CCT's convolutional tokenizer on the GPU: logits, loss and gradients against the CPU backend's, and
    /// replayed steps against eager ones (CudaTrainingSelfTest.ConvTokenizerChecks).</summary>
    [CudaTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void ConvTokenizerForwardGradientsAndReplayMatchTheCpu(DType dtype) => AllPass(CudaTrainingSelfTest.ConvTokenizerChecks(dtype));

    /// <summary>CCT's sequence pooling on the GPU: logits, loss and gradients against the CPU backend's, and replayed
    /// steps against eager ones (CudaTrainingSelfTest.SeqPoolChecks).</summary>
    [CudaTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void SeqPoolForwardGradientsAndReplayMatchTheCpu(DType dtype) => AllPass(CudaTrainingSelfTest.SeqPoolChecks(dtype));

    [CudaFact]
    public void OneSweepAdamWGivesThePerRunNumbers() => AllPass([CudaTrainingSelfTest.AdamWRuns()]);
}
