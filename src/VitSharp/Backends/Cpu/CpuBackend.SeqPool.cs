using System.Runtime.CompilerServices;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cpu;

/// <summary>CCT's sequence pooling (<see cref="IBackend.SeqPool"/>) on the host: one task per image, each output written
/// by one thread in a fixed order, so results do not depend on the thread count.</summary>
public sealed unsafe partial class CpuBackend
{
    public void SeqPool(Tensor x, Tensor scores, Tensor weights, Tensor y)
    {
        HostOps.CheckSeqPool("SeqPool", x, scores, weights, y);
        int batch = x.Dim(0), n = x.Dim(1), d = x.Dim(2);
        float* xp = x.Data, sp = scores.Data, wp = weights.Data, yp = y.Data;
        CpuThreads.For(batch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int b) =>
        {
            float* s = sp + (long)b * n, w = wp + (long)b * n, o = yp + (long)b * d;
            float m = float.NegativeInfinity, sum = 0;
            for (int i = 0; i < n; i++) m = Math.Max(m, s[i]);
            for (int i = 0; i < n; i++) sum += w[i] = MathF.Exp(s[i] - m);
            float inv = 1f / sum;
            var acc = new Span<float>(o, d);
            acc.Clear();
            for (int i = 0; i < n; i++)
            {
                float wi = w[i] *= inv;
                float* xi = xp + ((long)b * n + i) * d;
                for (int c = 0; c < d; c++) o[c] += wi * xi[c];
            }
        });
    }

    public void SeqPoolBackward(Tensor dy, Tensor x, Tensor weights, Tensor dx, Tensor dscores)
    {
        HostOps.CheckSeqPool("SeqPoolBackward", x, dscores, weights, dy);
        if (dx.Length != x.Length) throw new ArgumentException($"SeqPoolBackward: dx {dx} for {x}");
        int batch = x.Dim(0), n = x.Dim(1), d = x.Dim(2);
        float* gp = dy.Data, xp = x.Data, wp = weights.Data, dxp = dx.Data, dsp = dscores.Data;
        CpuThreads.For(batch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int b) =>
        {
            float* g = gp + (long)b * d, w = wp + (long)b * n, ds = dsp + (long)b * n;
            float dot = 0;
            for (int i = 0; i < n; i++)
            {
                float* xi = xp + ((long)b * n + i) * d;
                float dw = 0;
                for (int c = 0; c < d; c++) dw += xi[c] * g[c];
                ds[i] = dw;
                dot += w[i] * dw;
            }
            for (int i = 0; i < n; i++)
            {
                float wi = w[i];
                ds[i] = wi * (ds[i] - dot);
                float* dxi = dxp + ((long)b * n + i) * d;
                for (int c = 0; c < d; c++) dxi[c] = wi * g[c];
            }
        });
    }
}
