using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace VitSharp.Backends.Cpu;

// The family options' ops that run once per block or per forward on every token (IBackend's defaults copy through the
// host): in place on the CPU's own memory. The rest keep IBackend's defaults (HostOps), which are memcpy-cheap here.
public sealed unsafe partial class CpuBackend
{
    /// <summary>Layer scale: y = x ⊙ γ per row.</summary>
    public void MulChannels(Tensors.Tensor x, Tensors.Tensor gamma, Tensors.Tensor y)
    {
        int d = gamma.Dim(0);
        if (x.Length % d != 0 || y.Length != x.Length) throw new ArgumentException($"MulChannels: {x} ⊙ {gamma} -> {y}");
        float* xp = x.Data, yp = y.Data;
        var g = gamma.Span;
        long rows = x.Length / d;
        for (long r = 0; r < rows; r++)
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(xp + r * d, d), g, new Span<float>(yp + r * d, d));
    }

    public void ScaleInto(Tensors.Tensor x, float s, Tensors.Tensor y) => TensorPrimitives.Multiply(x.Span, s, y.Span);

    /// <summary>x = [prefix tokens ; patches] + pos, per sample.</summary>
    public void EmbedTokens(Tensors.Tensor patches, IReadOnlyList<Tensors.Tensor> prefix, Tensors.Tensor pos, Tensors.Tensor x)
    {
        int batch = patches.Dim(0), np = patches.Dim(1), d = patches.Dim(2), t = x.Dim(1);
        int k = prefix.Sum(p => p.Dim(1));
        if (t != k + np || pos.Dim(1) != t || x.Dim(2) != d)
            throw new ArgumentException($"EmbedTokens: {k} prefix tokens + {patches} with {pos} into {x}");
        float* pp = patches.Data, xp = x.Data, ps = pos.Data;
        for (int b = 0; b < batch; b++)
        {
            float* xb = xp + (long)b * t * d;
            long at = 0;
            foreach (var p in prefix)
            {
                TensorPrimitives.Add(p.Span, new ReadOnlySpan<float>(ps + at, (int)p.Length), new Span<float>(xb + at, (int)p.Length));
                at += p.Length;
            }
            TensorPrimitives.Add(new ReadOnlySpan<float>(pp + (long)b * np * d, np * d),
                new ReadOnlySpan<float>(ps + at, np * d), new Span<float>(xb + at, np * d));
        }
    }
}
