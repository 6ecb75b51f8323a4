using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>The shape contract of <see cref="IBackend.Linear"/>, checked the same way by every backend.</summary>
internal static class LinearShape
{
    /// <summary>x (rows, K) · w (N, K)ᵀ → y (rows, N); returns (M = rows, N, K).</summary>
    public static (int M, int N, int K) Check(Tensor x, Tensor w, Tensor y)
    {
        int k = x.Dim(-1), n = w.Dim(0);
        if (w.Dim(1) != k) throw new ArgumentException($"Linear: input {x} does not match weight {w}");
        if (y.Dim(-1) != n) throw new ArgumentException($"Linear: output {y} does not match weight {w}");
        int m = checked((int)(x.Length / k));
        if (y.Length != (long)m * n) throw new ArgumentException($"Linear: output {y} for input {x}");
        return (m, n, k);
    }
}
