using VitSharp.Data.Transforms;

namespace VitSharp.Checkpoints;

/// <summary>
/// Resampling of learned absolute position embeddings to another grid, as timm's resample_abs_pos_embed does:
/// prefix (class) tokens kept aside, the grid interpolated like torch.nn.functional.interpolate(align_corners=False,
/// antialias=True) — PIL-style separable filters (bicubic a = −0.5), weights normalised over the taps inside the grid.
/// </summary>
public static class PositionEmbedding
{
    /// <param name="pos">(1, prefix + oldH·oldW, D)</param>
    /// <param name="prefix">the leading class/distillation/register tokens, copied unchanged.</param>
    /// <param name="oldGrid">the patch grid <paramref name="pos"/> was trained for.</param>
    /// <param name="newGrid">the patch grid to resample it to.</param>
    /// <param name="mode">the interpolation filter.</param>
    public static HostArray Resample(HostArray pos, int prefix, (int H, int W) oldGrid, (int H, int W) newGrid,
        Interpolation mode = Interpolation.Bicubic)
    {
        if (pos.Shape.Length != 3 || pos.Shape[0] != 1) throw new ArgumentException($"position embedding must be (1, T, D), got {pos}");
        int d = pos.Shape[2];
        if (pos.Shape[1] != prefix + oldGrid.H * oldGrid.W)
            throw new ArgumentException($"position embedding {pos} does not hold {prefix} prefix tokens and a {oldGrid.H}×{oldGrid.W} grid");
        if (oldGrid == newGrid) return pos;

        int newT = prefix + newGrid.H * newGrid.W;
        var o = new float[newT * d];
        Array.Copy(pos.Data, o, prefix * d);
        var (rowIdx, rowW) = Weights(oldGrid.H, newGrid.H, mode);
        var (colIdx, colW) = Weights(oldGrid.W, newGrid.W, mode);
        var src = pos.Data;
        // Separable: interpolate along width first into (oldH, newW, D), then along height. Accumulate in double.
        var tmp = new double[oldGrid.H * newGrid.W * d];
        for (int y = 0; y < oldGrid.H; y++)
            for (int x = 0; x < newGrid.W; x++)
                for (int t = 0; t < colIdx[x].Length; t++)
                {
                    double w = colW[x][t];
                    int s = (prefix + y * oldGrid.W + colIdx[x][t]) * d;
                    int dst = (y * newGrid.W + x) * d;
                    for (int c = 0; c < d; c++) tmp[dst + c] += w * src[s + c];
                }
        for (int y = 0; y < newGrid.H; y++)
            for (int x = 0; x < newGrid.W; x++)
            {
                int dst = (prefix + y * newGrid.W + x) * d;
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int t = 0; t < rowIdx[y].Length; t++) acc += rowW[y][t] * tmp[(rowIdx[y][t] * newGrid.W + x) * d + c];
                    o[dst + c] = (float)acc;
                }
            }
        return new HostArray([1, newT, d], o);
    }

    /// <summary>Taps and normalised weights of each output index (PyTorch's _compute_weights_aa).</summary>
    private static (int[][] idx, double[][] w) Weights(int inSize, int outSize, Interpolation mode)
    {
        double scale = (double)inSize / outSize;
        double taps = mode == Interpolation.Bicubic ? 4 : 2;
        double support = scale >= 1 ? taps * 0.5 * scale : taps * 0.5;
        double invScale = scale >= 1 ? 1 / scale : 1;
        var idx = new int[outSize][];
        var ws = new double[outSize][];
        for (int i = 0; i < outSize; i++)
        {
            double center = scale * (i + 0.5);
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xsize = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            idx[i] = new int[xsize];
            ws[i] = new double[xsize];
            double total = 0;
            for (int j = 0; j < xsize; j++)
            {
                double w = Filter((j + xmin - center + 0.5) * invScale, mode);
                idx[i][j] = xmin + j;
                ws[i][j] = w;
                total += w;
            }
            if (total != 0) for (int j = 0; j < xsize; j++) ws[i][j] /= total;
        }
        return (idx, ws);
    }

    private static double Filter(double x, Interpolation mode)
    {
        x = Math.Abs(x);
        if (mode == Interpolation.Bilinear) return x < 1 ? 1 - x : 0;
        const double a = -0.5;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
        return 0;
    }
}
