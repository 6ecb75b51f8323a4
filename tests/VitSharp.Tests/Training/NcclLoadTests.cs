using VitSharp.Backends.Cuda;

namespace VitSharp.Tests.Training;

/// <summary>Skipped where libnccl is installed (the GPU machine): there the device check script runs NCCL itself.</summary>
public sealed class NoNcclFactAttribute : FactAttribute
{
    public NoNcclFactAttribute()
    {
        if (NcclCommunicator.IsAvailable(out _)) Skip = "tests the machine without NCCL; this one has libnccl";
    }
}

public class NcclLoadTests
{
    [NoNcclFact]
    public void MissingNcclIsOneLineNamingWhereItLooked()
    {
        Assert.False(NcclCommunicator.IsAvailable(out var why));
        Assert.StartsWith("CUDA NCCL library not found (tried ", why);
        Assert.Contains("libnccl.so.2", why);
        Assert.Contains("VITSHARP_CUDA_PATH", why);
        Assert.DoesNotContain('\n', why);
        Assert.Throws<VitSharp.Backends.Cuda.Native.CudaUnavailableException>(() => NcclCommunicator.Version());
    }
}
