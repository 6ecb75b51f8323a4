using System.Runtime.Intrinsics;
using VitSharp.Backends.Cpu;

namespace VitSharp.Tests;

public class CpuVectorExpTests
{
    [CpuFeatureFact("avx512f")] // VectorExp.IsSupported
    public void VectorExpIsWithinTwoUlpOfExp()
    {
        var xs = new List<float>();
        for (int i = -110000; i <= 90000; i++) xs.Add(i * 1e-3f);
        xs.AddRange(new[] { 0f, -0f, 1e-30f, -1e-30f, -1e4f, float.NegativeInfinity, -87.33655f, 88.72283f });
        while (xs.Count % 16 != 0) xs.Add(0);
        var x = xs.ToArray();
        for (int i = 0; i < x.Length; i += 16)
        {
            var e = VectorExp.Exp(Vector512.Create(x.AsSpan(i, 16)));
            for (int l = 0; l < 16; l++)
            {
                double want = Math.Exp(x[i + l]), got = e[l];
                if (want > float.MaxValue) { Assert.True(float.IsPositiveInfinity(e[l]), $"exp({x[i + l]}) = {got}"); continue; }
                // 2 ulp relative for normal results; tiny absolute error where the result is subnormal or 0.
                double tol = Math.Max(2.4e-7 * want, 1.5e-45);
                Assert.True(Math.Abs(got - want) <= tol, $"exp({x[i + l]:R}) = {got:R}, want {want:R}");
            }
        }
    }
}
