namespace VitSharp.Training;

/// <summary>
/// Mixup and CutMix on a host batch, following timm's batch mode: each batch draws either mixup (λ ~ Beta(α, α)) or
/// CutMix (a box of area 1−λ from the batch flipped end to end) with probability <see cref="SwitchProb"/>; targets mix the
/// smoothed one-hot labels by λ (CutMix's λ corrected to the box actually pasted). The RNG is the caller's, seeded per step.
/// </summary>
public sealed record Mixup(float MixupAlpha = 0.8f, float CutmixAlpha = 1.0f, float Prob = 1.0f, float SwitchProb = 0.5f)
{
    public bool Enabled => Prob > 0 && (MixupAlpha > 0 || CutmixAlpha > 0);

    /// <summary>Mixes <paramref name="images"/> (B, C, H, W) in place and returns the targets (B, K).</summary>
    public float[] Apply(float[] images, int batch, int channels, int h, int w, int[] labels, int classes, float smoothing, Random rng)
    {
        var targets = new float[batch * classes];
        float lam = 1f;
        if (Enabled && rng.NextDouble() < Prob)
        {
            bool cutmix = CutmixAlpha > 0 && (MixupAlpha <= 0 || rng.NextDouble() < SwitchProb);
            lam = (float)Beta(rng, cutmix ? CutmixAlpha : MixupAlpha);
            int plane = h * w, per = channels * plane;
            if (cutmix)
            {
                double cut = Math.Sqrt(1 - lam);
                int ch = (int)(h * cut), cw = (int)(w * cut);
                int cy = rng.Next(h), cx = rng.Next(w);
                int y0 = Math.Clamp(cy - ch / 2, 0, h), y1 = Math.Clamp(cy + ch / 2, 0, h);
                int x0 = Math.Clamp(cx - cw / 2, 0, w), x1 = Math.Clamp(cx + cw / 2, 0, w);
                PairUp(batch, b =>
                {
                    // Sample b takes the box from sample batch-1-b and gives it its own: the two swap their boxes.
                    var p = images.AsSpan(b * per, per);
                    var q = images.AsSpan((batch - 1 - b) * per, per);
                    for (int c = 0; c < channels; c++)
                        for (int y = y0; y < y1; y++)
                        {
                            for (int at = c * plane + y * w + x0, end = at + x1 - x0; at < end; at++)
                                (p[at], q[at]) = (q[at], p[at]);
                        }
                });
                lam = 1f - (float)((y1 - y0) * (x1 - x0)) / (h * w);
            }
            else
            {
                float keep = lam, take = 1 - lam;
                PairUp(batch, b => Blend(images.AsSpan(b * per, per), images.AsSpan((batch - 1 - b) * per, per), keep, take));
            }
        }
        var flipped = labels.Reverse().ToArray();
        Targets.Fill(targets, labels, classes, smoothing, lam);
        if (lam < 1f) Targets.Fill(targets, flipped, classes, smoothing, 1 - lam);
        return targets;
    }

    /// <summary>Runs <paramref name="pair"/> for every b &lt; batch/2 (sample b with sample batch−1−b) over the cores. The
    /// batch is mixed in place, each pair at once: no copy of the batch is made (6 MB for CIFAR at 512).</summary>
    private static void PairUp(int batch, Action<int> pair)
    {
        int pairs = batch / 2;
        if (pairs >= 32) Parallel.For(0, pairs, pair);
        else for (int b = 0; b < pairs; b++) pair(b);
    }

    /// <summary>p ← p·keep + q·take and q ← q·keep + p·take from the old values: the product and sum rounded as the
    /// scalar expression <c>x * keep + y * take</c> rounds them (no fused multiply-add), so the lanes and the tail agree.</summary>
    private static void Blend(Span<float> p, Span<float> q, float keep, float take)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            var vk = new System.Numerics.Vector<float>(keep);
            var vt = new System.Numerics.Vector<float>(take);
            for (int n = System.Numerics.Vector<float>.Count; i <= p.Length - n; i += n)
            {
                var a = new System.Numerics.Vector<float>(p[i..]);
                var b = new System.Numerics.Vector<float>(q[i..]);
                (a * vk + b * vt).CopyTo(p[i..]);
                (b * vk + a * vt).CopyTo(q[i..]);
            }
        }
        for (; i < p.Length; i++)
        {
            float a = p[i], b = q[i];
            p[i] = a * keep + b * take;
            q[i] = b * keep + a * take;
        }
    }

    /// <summary>Beta(α, α) from two Gamma draws (Marsaglia–Tsang).</summary>
    private static double Beta(Random rng, double alpha)
    {
        double x = Gamma(rng, alpha), y = Gamma(rng, alpha);
        return x / (x + y);
    }

    private static double Gamma(Random rng, double alpha)
    {
        if (alpha < 1) return Gamma(rng, alpha + 1) * Math.Pow(rng.NextDouble(), 1 / alpha);
        double d = alpha - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                x = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = rng.NextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v))) return d * v;
        }
    }
}
