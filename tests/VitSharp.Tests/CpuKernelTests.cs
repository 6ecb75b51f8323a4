using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Tensors;

namespace VitSharp.Tests;

/// <summary>Each CPU backend kernel against a plain double-precision reference written out here.</summary>
public unsafe class CpuKernelTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    [Theory]
    [InlineData(Activation.Gelu)]
    [InlineData(Activation.GeluTanh)]
    public void VectorGeluMatchesDoubleReference(Activation act)
    {
        // A dense grid over the interesting range, every interval edge of the erf table, and extremes.
        var xs = new List<float>();
        for (int i = -12000; i <= 12000; i++) xs.Add(i * 1e-3f);
        for (int i = 0; i <= 17; i++) { xs.Add(i * 0.25f * MathF.Sqrt(2)); xs.Add(-i * 0.25f * MathF.Sqrt(2)); }
        xs.AddRange(new[] { 0f, -0f, 1e-30f, -1e-30f, 30f, -30f, 1e4f, -1e4f, float.Epsilon });
        var x = xs.ToArray();
        var y = new float[x.Length + 3];
        Activations.Apply(act, x, y);
        for (int i = 0; i < x.Length; i++)
        {
            double xd = x[i];
            double want = act == Activation.Gelu
                ? 0.5 * xd * (1 + Activations.Erf(xd / Math.Sqrt(2)))
                : 0.5 * xd * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (xd + 0.044715 * xd * xd * xd)));
            // 1e-6 absolute (what PyTorch agreement needs), widened by 2 float ulps where |GELU| > 4.
            double tol = 1e-6 + 2.4e-7 * Math.Max(0, Math.Abs(want) - 4);
            Assert.True(Math.Abs(y[i] - want) <= tol, $"{act}({x[i]:R}) = {y[i]:R}, want {want:R}");
        }
        Assert.Equal(new float[3], y[^3..]);
    }

    [Fact]
    public void GeluErfIsWithinAFewUlpsNearZeroAndAtTheTail()
    {
        // Relative accuracy where |GELU| is small: the absolute bound above says little there.
        var x = new float[] { 1e-3f, -1e-3f, 0.1f, -0.1f, -3f, -4f, -5f };
        var y = new float[x.Length];
        Activations.Apply(Activation.Gelu, x, y);
        for (int i = 0; i < x.Length; i++)
        {
            double want = 0.5 * x[i] * (1 + Activations.Erf(x[i] / Math.Sqrt(2)));
            Assert.True(Math.Abs(y[i] - want) <= 1e-4 * Math.Abs(want) + 1e-9, $"GELU({x[i]}) = {y[i]}, want {want}");
        }
    }

    [Fact]
    public void LayerNormMatchesDoubleReference()
    {
        const int rows = 37, d = 80;
        var rng = new Random(3);
        // An offset of 100 checks the two-pass variance (one pass would lose digits).
        var xv = Enumerable.Range(0, rows * d).Select(_ => (float)(100 + rng.NextDouble() * 2 - 1)).ToArray();
        var gv = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() + 0.5)).ToArray();
        var bv = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        using Tensor x = Tensor.FromArray(xv, rows, d), g = Tensor.FromArray(gv, d), b = Tensor.FromArray(bv, d), y = Tensor.Host(rows, d);
        Cpu.LayerNorm(x, g, b, 1e-6f, y);
        var got = y.ToArray();
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var_ = 0;
            for (int i = 0; i < d; i++) mean += xv[r * d + i];
            mean /= d;
            for (int i = 0; i < d; i++) var_ += (xv[r * d + i] - mean) * (xv[r * d + i] - mean);
            double rstd = 1 / Math.Sqrt(var_ / d + 1e-6);
            for (int i = 0; i < d; i++)
            {
                double want = (xv[r * d + i] - mean) * rstd * gv[i] + bv[i];
                Assert.True(Math.Abs(got[r * d + i] - want) <= 2e-5, $"row {r} col {i}: {got[r * d + i]} vs {want}");
            }
        }
        // In place gives the same.
        Cpu.LayerNorm(x, g, b, 1e-6f, x);
        Assert.Equal(got, x.ToArray());
    }

        [CpuFeatureTheory("avx512f")]   // SoftmaxRowPadded is the fused attention's AVX-512 kernel
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(48)]
    [InlineData(197)]
    public void SoftmaxRowPaddedMatchesDoubleAndZeroesThePadding(int n)
    {
        var rng = new Random(n);
        int padded = (n + 15) / 16 * 16;
        var row = Enumerable.Range(0, padded).Select(i => i < n ? (float)(rng.NextDouble() * 40 - 20) : float.NaN).ToArray();
        var x = row[..n].Select(v => (double)v * 0.3).ToArray();
        double max = x.Max(), sum = x.Sum(v => Math.Exp(v - max));
        fixed (float* p = row) Normalize.SoftmaxRowPadded(p, n, 0.3f);
        for (int i = 0; i < n; i++)
        {
            double want = Math.Exp(x[i] - max) / sum;
            Assert.True(Math.Abs(row[i] - want) <= 1e-7 + 1e-5 * want, $"{i}: {row[i]} vs {want}");
        }
        for (int i = n; i < padded; i++) Assert.Equal(0f, row[i]);
    }

[Theory]
    [InlineData(2, 1, 3, 32)]
    [InlineData(2, 7, 3, 64)]
    [InlineData(1, 50, 2, 80)]
    [InlineData(3, 197, 1, 16)]
    [InlineData(1, 197, 2, 64)]   // ViT /16 at 224: 197 tokens
    [InlineData(3, 197, 2, 32)]
    [InlineData(1, 50, 3, 80)]    // ViT /32 at 224: 50 tokens
    [InlineData(3, 50, 2, 64)]
    [InlineData(1, 577, 1, 64)]   // ViT /16 at 384
    [InlineData(1, 577, 1, 80)]
    [InlineData(3, 25, 2, 48)]    // 48 = 32 + 16 columns
    [InlineData(1, 30, 2, 24)]    // not a multiple of 16: the GEMM path
    [InlineData(1, 9, 2, 128)]
    [InlineData(2, 16, 2, 64)]    // whole vectors only (no masked tail in the softmax)
    [InlineData(1, 32, 1, 16)]
    [InlineData(1, 1, 2, 32)]     // one token
    public void AttentionMatchesDoubleReference(int batch, int n, int heads, int hd)
    {
        int width = heads * hd;
        var rng = new Random(n * 13 + hd);
        var qkvv = Enumerable.Range(0, batch * n * 3 * width).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float scale = 1f / MathF.Sqrt(hd);
        using Tensor qkv = Tensor.FromArray(qkvv, batch, n, 3 * width), y = Tensor.Host(batch, n, width),
            probs = Tensor.Host(batch, heads, n, n), y2 = Tensor.Host(batch, n, width);
        Cpu.Attention(qkv, y, heads, scale, probs);
        Cpu.Attention(qkv, y2, heads, scale);
        float[] got = y.ToArray(), gotP = probs.ToArray();
        Assert.Equal(got, y2.ToArray());
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < n; i++)
                {
                    float Q(int t, int part, int c) => qkvv[((b * n + t) * 3 + part) * width + h * hd + c];
                    var p = new double[n];
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int c = 0; c < hd; c++) s += (double)Q(i, 0, c) * Q(j, 1, c);
                        p[j] = s * scale;
                    }
                    double max = p.Max(), sum = 0;
                    for (int j = 0; j < n; j++) sum += p[j] = Math.Exp(p[j] - max);
                    for (int j = 0; j < n; j++)
                    {
                        p[j] /= sum;
                        Assert.True(Math.Abs(gotP[((b * heads + h) * n + i) * n + j] - p[j]) <= 1e-6 + 1e-5 * p[j], "probs");
                    }
                    for (int c = 0; c < hd; c++)
                    {
                        double o = 0;
                        for (int j = 0; j < n; j++) o += p[j] * Q(j, 2, c);
                        float g = got[(b * n + i) * width + h * hd + c];
                        Assert.True(Math.Abs(g - o) <= 2e-6, $"b{b} h{h} i{i} c{c}: {g} vs {o}");
                    }
                }
    }

    [Fact]
    public void LinearWithBiasGeluAndAccumulate()
    {
        const int rows = 29, k = 40, n = 52;
        var rng = new Random(9);
        float[] xv = Rand(rng, rows * k), wv = Rand(rng, n * k), bv = Rand(rng, n), y0 = Rand(rng, rows * n);
        using Tensor x = Tensor.FromArray(xv, rows, k), w = Tensor.FromArray(wv, n, k), b = Tensor.FromArray(bv, n),
            y = Tensor.Host(rows, n), acc = Tensor.FromArray(y0, rows, n);
        Cpu.Linear(x, w, b, y, Activation.Gelu);
        Cpu.Linear(x, w, b, acc, accumulate: true);
        float[] got = y.ToArray(), gotAcc = acc.ToArray();
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                double s = bv[j];
                for (int i = 0; i < k; i++) s += (double)xv[r * k + i] * wv[j * k + i];
                double gelu = 0.5 * s * (1 + Activations.Erf(s / Math.Sqrt(2)));
                Assert.True(Math.Abs(got[r * n + j] - gelu) <= 1e-5, $"gelu ({r},{j})");
                Assert.True(Math.Abs(gotAcc[r * n + j] - (s + y0[r * n + j])) <= 1e-5, $"acc ({r},{j})");
            }
    }

    [Fact]
    public void PatchEmbedIsAStridedConvolution()
    {
        const int batch = 2, c = 3, hgt = 12, wid = 8, p = 4, d = 5;
        var rng = new Random(4);
        float[] iv = Rand(rng, batch * c * hgt * wid), wv = Rand(rng, d * c * p * p), bv = Rand(rng, d);
        int gh = hgt / p, gw = wid / p;
        using Tensor img = Tensor.FromArray(iv, batch, c, hgt, wid), w = Tensor.FromArray(wv, d, c, p, p),
            b = Tensor.FromArray(bv, d), y = Tensor.Host(batch, gh * gw, d);
        Cpu.PatchEmbed(img, w, b, y, p);
        var got = y.ToArray();
        for (int n = 0; n < batch; n++)
            for (int py = 0; py < gh; py++)
                for (int px = 0; px < gw; px++)
                    for (int o = 0; o < d; o++)
                    {
                        double s = bv[o];
                        for (int ch = 0; ch < c; ch++)
                            for (int dy = 0; dy < p; dy++)
                                for (int dx = 0; dx < p; dx++)
                                    s += (double)iv[((n * c + ch) * hgt + py * p + dy) * wid + px * p + dx] * wv[((o * c + ch) * p + dy) * p + dx];
                        Assert.True(Math.Abs(got[(n * gh * gw + py * gw + px) * d + o] - s) <= 1e-5, $"patch ({n},{py},{px}) out {o}");
                    }
    }

    [Fact]
    public void AddInPlaceApplyAndTranspose()
    {
        var rng = new Random(6);
        const int len = 100_003;   // large enough for several parallel chunks, odd tail
        float[] av = Rand(rng, len), bv = Rand(rng, len);
        using Tensor a = Tensor.FromArray(av, len), b = Tensor.FromArray(bv, len), g = Tensor.Host(len);
        Cpu.Add(a, b, a);
        var sum = a.ToArray();
        for (int i = 0; i < len; i++) Assert.Equal(av[i] + bv[i], sum[i]);
        Cpu.Apply(Activation.Gelu, b, g);
        var gv = g.ToArray();
        for (int i = 0; i < len; i += 997) Assert.True(Math.Abs(gv[i] - Activations.GeluErf(bv[i])) <= 1e-6);

        const int bt = 3, r = 37, cc = 21;
        float[] tv = Rand(rng, bt * r * cc);
        using Tensor t = Tensor.FromArray(tv, bt, r, cc), tt = Tensor.Host(bt, cc, r);
        Cpu.Transpose12(t, tt);
        var got = tt.ToArray();
        for (int n = 0; n < bt; n++)
            for (int i = 0; i < r; i++)
                for (int j = 0; j < cc; j++) Assert.Equal(tv[(n * r + i) * cc + j], got[(n * cc + j) * r + i]);
    }

    private static float[] Rand(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
}
