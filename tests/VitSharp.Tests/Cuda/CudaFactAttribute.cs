using VitSharp.Backends.Cuda;

namespace VitSharp.Tests.Cuda;

/// <summary>A test that needs an NVIDIA GPU: skipped, with the reason, where the CUDA driver or a GPU is missing.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!CudaBackend.IsAvailable(out var why)) Skip = "needs an NVIDIA GPU and its driver: " + why;
    }
}

public sealed class CudaTheoryAttribute : TheoryAttribute
{
    public CudaTheoryAttribute()
    {
        if (!CudaBackend.IsAvailable(out var why)) Skip = "needs an NVIDIA GPU and its driver: " + why;
    }
}

/// <summary>A test that needs an NVIDIA GPU and ../shared: skipped, with the reason, where either is missing.</summary>
public sealed class CudaSharedFactAttribute : FactAttribute
{
    public CudaSharedFactAttribute()
    {
        if (!CudaBackend.IsAvailable(out var why)) Skip = "needs an NVIDIA GPU and its driver: " + why;
        else if (TestData.SharedRoot is null) Skip = "needs ../shared (reference data beside the repository); absent in this checkout";
    }
}

/// <summary>A test of what happens without a GPU: skipped, with the reason, where CUDA is available.</summary>
public sealed class NoCudaFactAttribute : FactAttribute
{
    public NoCudaFactAttribute()
    {
        if (CudaBackend.IsAvailable(out _)) Skip = "tests the CPU-only case; this machine has a working CUDA driver and GPU";
    }
}
