using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace VitSharp.Backends.Cpu;

/// <summary>Elementwise loops used in hot paths, compiled optimised on first call (see Normalize on why not TensorPrimitives).</summary>
internal static unsafe class VectorOps
{
    /// <summary>y = a + b over n floats; y may alias a or b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(float* a, float* b, float* y, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16) Vector512.Store(Vector512.Load(a + i) + Vector512.Load(b + i), y + i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8) Vector256.Store(Vector256.Load(a + i) + Vector256.Load(b + i), y + i);
        for (; i < n; i++) y[i] = a[i] + b[i];
    }
}
