using System.Runtime.Intrinsics.X86;

namespace VitSharp.Tests;

/// <summary>A test of a SIMD code path: skipped, with the reason, on a CPU without the instruction set it needs
/// ("avx512f" or "avx2").</summary>
public sealed class CpuFeatureFactAttribute : FactAttribute
{
    public CpuFeatureFactAttribute(string feature)
    {
        bool has = feature switch
        {
            "avx512f" => Avx512F.IsSupported,
            "avx2" => Avx2.IsSupported,
            _ => throw new ArgumentException($"unknown CPU feature '{feature}'"),
        };
        if (!has) Skip = $"needs a CPU with {feature.ToUpperInvariant()} (this one has none)";
    }
}
