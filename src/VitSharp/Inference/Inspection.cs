using VitSharp.Checkpoints;

namespace VitSharp.Inference;

/// <summary>
/// What a ViT learned, as in the paper's figure 7: principal components of the patch-embedding filters, cosine
/// similarity of position embeddings, and how far each head attends (mean attention distance), plus attention
/// rollout (Abnar &amp; Zuidema 2020) for per-image maps.
/// </summary>
public static class Inspection
{
    /// <summary>Top principal components of the flattened filters (D, C·P·P), each a (C, P, P) pattern of unit norm whose
    /// entry of largest magnitude is positive (a fixed sign), with the fraction of variance each explains. Jacobi
    /// eigen-decomposition of the smaller Gram matrix.</summary>
    public static (HostArray Components, double[] ExplainedVariance) PatchEmbeddingPca(HostArray weight, int count)
    {
        if (weight.Shape.Length != 4) throw new ArgumentException($"patch embedding weight must be (D, C, P, P), got {weight}");
        int d = weight.Shape[0], n = weight.Shape[1] * weight.Shape[2] * weight.Shape[3];
        var x = new double[d, n]; // centred rows
        for (int j = 0; j < n; j++)
        {
            double mean = 0;
            for (int i = 0; i < d; i++) mean += weight.Data[(long)i * n + j];
            mean /= d;
            for (int i = 0; i < d; i++) x[i, j] = weight.Data[(long)i * n + j] - mean;
        }
        // Eigen-decompose the smaller Gram matrix: XᵀX (n×n) directly, or XXᵀ (d×d) and map u → Xᵀu.
        bool small = d < n;
        int m = small ? d : n;
        var gram = new double[m, m];
        for (int a = 0; a < m; a++)
            for (int b = a; b < m; b++)
            {
                double sum = 0;
                if (small) for (int k = 0; k < n; k++) sum += x[a, k] * x[b, k];
                else for (int k = 0; k < d; k++) sum += x[k, a] * x[k, b];
                gram[a, b] = gram[b, a] = sum;
            }
        var (values, vectors) = SymmetricEigen(gram);
        var order = Enumerable.Range(0, m).OrderByDescending(i => values[i]).Take(Math.Min(count, m)).ToArray();
        double total = values.Where(v => v > 0).Sum();
        var comps = new float[order.Length * n];
        for (int c = 0; c < order.Length; c++)
        {
            var dir = new double[n];
            if (small)
                for (int j = 0; j < n; j++) { double s = 0; for (int i = 0; i < d; i++) s += x[i, j] * vectors[i, order[c]]; dir[j] = s; }
            else
                for (int j = 0; j < n; j++) dir[j] = vectors[j, order[c]];
            double norm = Math.Sqrt(dir.Sum(v => v * v));
            // Fixed sign rule: the entry of largest magnitude (the first such) is positive.
            int big = 0;
            for (int j = 1; j < n; j++) if (Math.Abs(dir[j]) > Math.Abs(dir[big])) big = j;
            if (dir[big] < 0) norm = -norm;
            for (int j = 0; j < n; j++) comps[c * n + j] = (float)(norm != 0 ? dir[j] / norm : 0);
        }
        return (new HostArray([order.Length, weight.Shape[1], weight.Shape[2], weight.Shape[3]], comps),
            order.Select(i => total > 0 ? Math.Max(values[i], 0) / total : 0).ToArray());
    }

    /// <summary>Cosine similarity between the position embeddings of all grid positions: (G·G, G·G), row-major grid order.</summary>
    public static HostArray PositionSimilarity(HostArray pos, int prefix, int gridH, int gridW)
    {
        int dim = pos.Shape[^1], n = gridH * gridW;
        if (pos.Count != (long)(prefix + n) * dim) throw new ArgumentException($"position embedding {pos} is not {prefix}+{gridH}×{gridW} tokens");
        var norms = new double[n];
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int c = 0; c < dim; c++) { double v = pos.Data[(prefix + i) * dim + c]; s += v * v; }
            norms[i] = Math.Sqrt(s);
        }
        var sim = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int c = 0; c < dim; c++) s += (double)pos.Data[(prefix + i) * dim + c] * pos.Data[(prefix + j) * dim + c];
                sim[i * n + j] = (float)(s / Math.Max(norms[i] * norms[j], 1e-12));
            }
        return new HostArray([n, n], sim);
    }

    /// <summary>
    /// Mean attention distance in pixels, per layer and head: for each patch query, the distance to every patch key
    /// weighted by its attention, averaged over queries and images (prefix tokens are left out, as in the paper).
    /// </summary>
    /// <param name="probs">per layer, attention weights (B, H, T, T)</param>
    /// <param name="prefix">the leading non-patch tokens of T.</param>
    /// <param name="grid">patches per side.</param><param name="patch">the patch size in pixels.</param>
    public static double[][] AttentionDistance(IReadOnlyList<HostArray> probs, int prefix, int grid, int patch)
    {
        int n = grid * grid;
        var dist = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double dy = (i / grid - j / grid) * patch, dx = (i % grid - j % grid) * patch;
                dist[i, j] = Math.Sqrt(dx * dx + dy * dy);
            }
        var result = new double[probs.Count][];
        for (int l = 0; l < probs.Count; l++)
        {
            var p = probs[l];
            int b = p.Shape[0], h = p.Shape[1], t = p.Shape[2];
            if (t != prefix + n) throw new ArgumentException($"attention {p} does not cover {prefix}+{n} tokens");
            result[l] = new double[h];
            for (int head = 0; head < h; head++)
            {
                double total = 0;
                for (int img = 0; img < b; img++)
                    for (int i = 0; i < n; i++)
                    {
                        long rowStart = (((long)img * h + head) * t + prefix + i) * t + prefix;
                        double weighted = 0, mass = 0;
                        for (int j = 0; j < n; j++) { double a = p.Data[rowStart + j]; weighted += a * dist[i, j]; mass += a; }
                        total += mass > 0 ? weighted / mass : 0; // renormalised over patch keys
                    }
                result[l][head] = total / (b * n);
            }
        }
        return result;
    }

    /// <summary>
    /// Attention rollout for one image: Π over layers of (½·mean_heads(A) + ½·I), rows renormalised; returns the class
    /// token's row over the patches as a (G, G) map scaled to [0, 1].
    /// </summary>
    public static HostArray AttentionRollout(IReadOnlyList<HostArray> probs, int image, int grid)
    {
        int t = probs[0].Shape[2], h = probs[0].Shape[1];
        var rollout = Identity(t);
        foreach (var p in probs)
        {
            var a = new double[t, t];
            for (int head = 0; head < h; head++)
                for (int i = 0; i < t; i++)
                    for (int j = 0; j < t; j++)
                        a[i, j] += p.Data[(((long)image * h + head) * t + i) * t + j] / h;
            for (int i = 0; i < t; i++)
            {
                double s = 0;
                for (int j = 0; j < t; j++) { a[i, j] = 0.5 * a[i, j] + (i == j ? 0.5 : 0); s += a[i, j]; }
                for (int j = 0; j < t; j++) a[i, j] /= s;
            }
            rollout = Multiply(a, rollout);
        }
        int prefix = t - grid * grid;
        var map = new float[grid * grid];
        for (int j = 0; j < map.Length; j++) map[j] = (float)rollout[0, prefix + j];
        float max = map.Max(), min = map.Min();
        for (int j = 0; j < map.Length; j++) map[j] = max > min ? (map[j] - min) / (max - min) : 0;
        return new HostArray([grid, grid], map);
    }

    /// <summary>Per layer, the class token's attention to each patch averaged over heads, for one image: (L, G, G).
    /// Raw probabilities (not renormalised after dropping the prefix tokens).</summary>
    public static HostArray ClassTokenAttention(IReadOnlyList<HostArray> probs, int image, int grid)
    {
        int n = grid * grid;
        var map = new float[probs.Count * n];
        for (int l = 0; l < probs.Count; l++)
        {
            var p = probs[l];
            int h = p.Shape[1], t = p.Shape[2], prefix = t - n;
            if (prefix < 1) throw new ArgumentException($"attention {p} has no class token before {n} patches");
            for (int head = 0; head < h; head++)
            {
                long row = ((long)image * h + head) * t * t; // query 0: the class token
                for (int j = 0; j < n; j++) map[l * n + j] += p.Data[row + prefix + j] / h;
            }
        }
        return new HostArray([probs.Count, grid, grid], map);
    }

    private static double[,] Identity(int n)
    {
        var m = new double[n, n];
        for (int i = 0; i < n; i++) m[i, i] = 1;
        return m;
    }

    private static double[,] Multiply(double[,] a, double[,] b)
    {
        int n = a.GetLength(0);
        var c = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
            {
                double v = a[i, k];
                if (v == 0) continue;
                for (int j = 0; j < n; j++) c[i, j] += v * b[k, j];
            }
        return c;
    }

    /// <summary>Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations (columns of the second result).</summary>
    internal static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] matrix)
    {
        int n = matrix.GetLength(0);
        var a = (double[,])matrix.Clone();
        var v = Identity(n);
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int p = 0; p < n; p++)
            {
                diag += a[p, p] * a[p, p];
                for (int q = p + 1; q < n; q++) off += a[p, q] * a[p, q];
            }
            if (off <= 1e-22 * Math.Max(diag, 1e-300)) break;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    if (Math.Abs(a[p, q]) < 1e-300) continue;
                    double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        double akp = a[k, p], akq = a[k, q];
                        a[k, p] = c * akp - s * akq;
                        a[k, q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double apk = a[p, k], aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk;
                        a[q, k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k, p], vkq = v[k, q];
                        v[k, p] = c * vkp - s * vkq;
                        v[k, q] = s * vkp + c * vkq;
                    }
                }
        }
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = a[i, i];
        return (values, v);
    }
}
