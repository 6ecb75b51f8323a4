using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Tests;

/// <summary>Pre-packed weights and reused activations give exactly the results of the plain path.</summary>
public class CpuInferenceReuseTests
{
    // A private backend instance: other tests' weights never meet this cache.
    private readonly CpuBackend _cpu = new();

    [Theory]
    [InlineData(1, 48, 64)]      // one partial sliver
    [InlineData(197, 100, 384)]  // partial slivers in M and N, two K slices
    [InlineData(37, 1000, 200)]
    public void PrepackedLinearEqualsPlainLinear(int rows, int n, int k)
    {
        var rng = new Random(rows + n + k);
        using Tensor x = Rand(rng, rows, k), w = Rand(rng, n, k), b = Rand(rng, n), plain = Tensor.Host(rows, n),
            packed = Tensor.Host(rows, n), acc0 = Rand(rng, rows, n), acc1 = Tensor.Host(rows, n);
        acc0.Span.CopyTo(acc1.Span);
        _cpu.Linear(x, w, b, plain, Activation.Gelu);
        _cpu.Linear(x, w, null, acc0, accumulate: true);
        _cpu.Prepack(w);
        _cpu.Linear(x, w, b, packed, Activation.Gelu);
        _cpu.Linear(x, w, null, acc1, accumulate: true);
        Assert.Equal(plain.ToArray(), packed.ToArray());
        Assert.Equal(acc0.ToArray(), acc1.ToArray());

        // Released: a changed weight is seen again.
        _cpu.Release(w);
        w.Span[0] += 1;
        _cpu.Linear(x, w, b, packed, Activation.Gelu);
        _cpu.Linear(x, w, b, plain, Activation.Gelu); // both unpacked now
        Assert.Equal(plain.ToArray(), packed.ToArray());
    }

    [Fact]
    public void PreparedModelReusingActivationsMatchesAFreshModelAtEveryBatchSize()
    {
        var config = new VitConfig
        {
            ImageSize = 32, PatchSize = 8, EmbedDim = 64, Depth = 2, NumHeads = 2, MlpDim = 128, NumClasses = 10,
        };
        var weights = Initializer.Init(config, seed: 3);
        using var plain = new VisionTransformer(config, _cpu);
        plain.Load(weights, "init");
        using var prepared = new VisionTransformer(config, _cpu);
        prepared.Load(weights, "init");
        prepared.PrepareForInference();
        Assert.True(prepared.IsPreparedForInference);
        foreach (int batch in new[] { 2, 1, 3, 2, 2 })
        {
            var rng = new Random(batch);
            var input = new HostArray([batch, 3, 32, 32], Enumerable.Range(0, batch * 3 * 32 * 32).Select(_ => (float)rng.NextDouble()).ToArray());
            Assert.Equal(plain.Run(input).Data, prepared.Run(input).Data);
            Assert.Equal(plain.Run(input, OutputKind.Tokens).Data, prepared.Run(input, OutputKind.Tokens).Data);
        }
        // Loading new weights re-packs them.
        var other = Initializer.Init(config, seed: 4);
        plain.Load(other, "init");
        prepared.Load(other, "init");
        var x = new HostArray([1, 3, 32, 32], new float[3 * 32 * 32]);
        Assert.Equal(plain.Run(x).Data, prepared.Run(x).Data);
    }

    private static Tensor Rand(Random rng, params int[] shape)
    {
        var t = Tensor.Host(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() * 2 - 1);
        return t;
    }
}
