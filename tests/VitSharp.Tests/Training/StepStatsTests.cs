using VitSharp.Backends.Cpu;
using VitSharp.Tensors;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>The device-side step statistics the trainer reads only to log (CrossEntropyStats, ClipGradNorm) and the
/// drop-path row scale, on the CPU backend: the same numbers as the host-side arithmetic they replace.</summary>
public class StepStatsTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    [Fact]
    public void CrossEntropyStatsAddsTheLossAndCountsCorrectRows()
    {
        var rng = new Random(5);
        int b = 6, k = 4;
        var logits = Enumerable.Range(0, b * k).Select(_ => (float)rng.NextDouble() * 4 - 2).ToArray();
        int[] labels = [0, 1, 2, 3, 0, 1];
        using var l = Tensor.FromArray(logits, b, k);
        using var t = Tensor.FromArray(Targets.Smoothed(labels, k, 0.1f), b, k);
        using var lab = Tensor.FromArray(labels.Select(x => (float)x).ToArray(), b);
        using var d1 = Tensor.Host(b, k);
        using var d2 = Tensor.Host(b, k);
        using var stats = Tensor.Host(4);
        float loss = Cpu.SoftmaxCrossEntropy(l, t, d1, 0.5f);
        Cpu.CrossEntropyStats(l, t, lab, d2, 0.5f, stats);
        Cpu.CrossEntropyStats(l, t, lab, d2, 0.5f, stats); // accumulates
        int correct = Enumerable.Range(0, b).Count(r =>
            Enumerable.Range(0, k).Aggregate(0, (best, j) => logits[r * k + j] > logits[r * k + best] ? j : best) == labels[r]);
        Assert.Equal(2 * loss * 0.5f, stats.Span[0], 6);
        Assert.Equal(2 * correct, stats.Span[1]);
        Assert.Equal(d1.ToArray(), d2.ToArray());
    }

    [Fact]
    public void ClipGradNormScalesLikeTorchAndReportsTheNormBefore()
    {
        var g = Enumerable.Range(0, 100).Select(i => (float)Math.Sin(i)).ToArray();
        double norm = Math.Sqrt(g.Sum(v => (double)v * v));
        using var a = Tensor.FromArray((float[])g.Clone(), 100);
        using var stats = Tensor.Host(4);
        Cpu.ClipGradNorm(a, 1f, stats);
        Assert.Equal((float)norm, stats.Span[2]); // the norm in double, rounded once
        var clipped = a.ToArray();
        Assert.Equal(1.0, Math.Sqrt(clipped.Sum(v => (double)v * v)), 5);
        using var b2 = Tensor.FromArray((float[])g.Clone(), 100);
        Cpu.ClipGradNorm(b2, 100f, stats); // under the limit: untouched
        Assert.Equal(g, b2.ToArray());
    }

    [Fact]
    public void MultiplyRowsScalesEachSample()
    {
        using var x = Tensor.FromArray([1, 2, 3, 4, 5, 6], 3, 2);
        using var s = Tensor.FromArray([0f, 2f, -1f], 3);
        using var y = Tensor.Host(3, 2);
        Cpu.MultiplyRows(x, s, y);
        Assert.Equal([0f, 0f, 6f, 8f, -5f, -6f], y.ToArray());
    }
}
