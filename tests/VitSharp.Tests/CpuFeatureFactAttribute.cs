using System.Runtime.Intrinsics.X86;

namespace VitSharp.Tests;

/// <summary>A test of a SIMD code path: skipped, with the reason, on a CPU without the instruction set it needs
/// ("avx512f" or "avx2").</summary>
public sealed class CpuFeatureFactAttribute : FactAttribute
{
    public CpuFeatureFactAttribute(string feature) => Skip = CpuFeature.SkipReason(feature);
}

/// <summary>The same for a theory.</summary>
public sealed class CpuFeatureTheoryAttribute : TheoryAttribute
{
    public CpuFeatureTheoryAttribute(string feature) => Skip = CpuFeature.SkipReason(feature);
}

internal static class CpuFeature
{
    /// <summary>Null when this CPU has <paramref name="feature"/>, else why the test is skipped.</summary>
    public static string? SkipReason(string feature)
    {
        bool has = feature switch
        {
            "avx512f" => Avx512F.IsSupported,
            "avx2" => Avx2.IsSupported,
            _ => throw new ArgumentException($"unknown CPU feature '{feature}'"),
        };
        return has ? null : $"needs a CPU with {feature.ToUpperInvariant()} (this one has none)";
    }
}
