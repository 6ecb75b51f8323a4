using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>
/// The family options' ops (see the end of <see cref="IBackend"/>) computed on host floats: operands are copied to the
/// host, computed in F32 and copied back, so every backend and compute type gets them without kernels of its own.
/// Each is small next to the matrix products (token copies, per-channel scales, one-query attention).
/// </summary>
internal static class HostOps
{
    private static float[] Read(IBackend be, Tensor t)
    {
        var a = new float[t.Length];
        be.CopyToHost(t, a);
        return a;
    }

    private static void Write(IBackend be, float[] a, Tensor t) => be.CopyFromHost(a, t);

    public static void EmbedTokens(IBackend be, Tensor patches, IReadOnlyList<Tensor> prefix, Tensor pos, Tensor x)
    {
        int batch = patches.Dim(0), np = patches.Dim(1), d = patches.Dim(2), t = x.Dim(1);
        int k = prefix.Sum(p => p.Dim(1));
        if (t != k + np || pos.Dim(1) != t || x.Dim(2) != d)
            throw new ArgumentException($"EmbedTokens: {k} prefix tokens + {patches} with {pos} into {x}");
        var pp = Read(be, patches);
        var ps = Read(be, pos);
        var pre = new float[k * d];
        int at = 0;
        foreach (var p in prefix) { Read(be, p).CopyTo(pre, at); at += checked((int)p.Length); }
        var o = new float[x.Length];
        for (int b = 0; b < batch; b++)
        {
            long xb = (long)b * t * d;
            for (int i = 0; i < k * d; i++) o[xb + i] = pre[i] + ps[i];
            for (int i = 0; i < np * d; i++) o[xb + k * d + i] = pp[(long)b * np * d + i] + ps[k * d + i];
        }
        Write(be, o, x);
    }

    public static void EmbedTokensBackward(IBackend be, Tensor dx, Tensor dpatches, IReadOnlyList<Tensor> dprefix, Tensor dpos)
    {
        int batch = dx.Dim(0), t = dx.Dim(1), d = dx.Dim(2), np = dpatches.Dim(1);
        int k = t - np;
        var g = Read(be, dx);
        var dp = new float[dpatches.Length];
        var dps = Read(be, dpos);
        for (int b = 0; b < batch; b++)
        {
            long xb = (long)b * t * d;
            Array.Copy(g, xb + (long)k * d, dp, (long)b * np * d, (long)np * d);
            for (int i = 0; i < t * d; i++) dps[i] += g[xb + i];
        }
        int at = 0;
        foreach (var p in dprefix)
        {
            var a = Read(be, p);
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < a.Length; i++) a[i] += g[(long)b * t * d + at + i];
            Write(be, a, p);
            at += a.Length;
        }
        Write(be, dp, dpatches);
        Write(be, dps, dpos);
    }

    public static void MulChannels(IBackend be, Tensor x, Tensor gamma, Tensor y)
    {
        var a = Read(be, x);
        var g = Read(be, gamma);
        int d = g.Length;
        for (long i = 0; i < a.Length; i++) a[i] *= g[i % d];
        Write(be, a, y);
    }

    public static void MulChannelsBackward(IBackend be, Tensor dy, Tensor x, Tensor gamma, Tensor dx, Tensor dgamma)
    {
        var g = Read(be, dy);
        var xs = Read(be, x);
        var gm = Read(be, gamma);
        var dg = Read(be, dgamma);
        int d = gm.Length;
        var o = new float[g.Length];
        var acc = new double[d];
        for (long i = 0; i < g.Length; i++)
        {
            o[i] = g[i] * gm[i % d];
            acc[i % d] += (double)g[i] * xs[i];
        }
        for (int c = 0; c < d; c++) dg[c] += (float)acc[c];
        Write(be, o, dx);
        Write(be, dg, dgamma);
    }

    public static void ScaleInto(IBackend be, Tensor x, float s, Tensor y)
    {
        var a = Read(be, x);
        for (long i = 0; i < a.Length; i++) a[i] *= s;
        Write(be, a, y);
    }

    /// <summary>The reference of <see cref="ITrainingBackend.DistillationLoss"/>: each row in double, log-probabilities
    /// as differences from the log-sum-exp (never log of an underflowed probability), the batch sum in row order.</summary>
    public static void DistillationLoss(IBackend be, Tensor student, Tensor teacher, DistillationKind kind, float tau, Tensor dstudent,
        float gradScale, Tensor stats)
    {
        if (student.Rank != 2 || !student.Shape.AsSpan().SequenceEqual(teacher.Shape) || dstudent.Length != student.Length || stats.Length < 2)
            throw new ArgumentException($"DistillationLoss: student {student}, teacher {teacher} -> {dstudent}, stats {stats}");
        if (!(tau > 0) || !float.IsFinite(tau)) throw new ArgumentException($"DistillationLoss: temperature {tau} must be > 0");
        int batch = student.Dim(0), k = student.Dim(1);
        var s = Read(be, student);
        var t = Read(be, teacher);
        var ds = new float[s.Length];
        var logQ = new double[k];
        double inv = kind == DistillationKind.Soft ? 1.0 / tau : 1.0, total = 0;
        for (int b = 0; b < batch; b++)
        {
            int row = b * k;
            double sm = double.NegativeInfinity, tm = double.NegativeInfinity;
            int arg = 0;
            for (int j = 0; j < k; j++)
            {
                sm = Math.Max(sm, s[row + j] * inv);
                if (t[row + j] * inv > tm) { tm = t[row + j] * inv; arg = j; }
            }
            double sz = 0, tz = 0;
            for (int j = 0; j < k; j++) { sz += Math.Exp(s[row + j] * inv - sm); tz += Math.Exp(t[row + j] * inv - tm); }
            double sLse = sm + Math.Log(sz), tLse = tm + Math.Log(tz);
            for (int j = 0; j < k; j++) logQ[j] = s[row + j] * inv - sLse;
            double loss = 0;
            if (kind == DistillationKind.Hard)
            {
                loss = -logQ[arg];
                double g = gradScale / (double)batch;
                for (int j = 0; j < k; j++) ds[row + j] = (float)((Math.Exp(logQ[j]) - (j == arg ? 1 : 0)) * g);
            }
            else
            {
                double g = gradScale * (double)tau / ((double)batch * k);
                for (int j = 0; j < k; j++)
                {
                    double logP = t[row + j] * inv - tLse, p = Math.Exp(logP);
                    loss += p * (logP - logQ[j]);
                    ds[row + j] = (float)((Math.Exp(logQ[j]) - p) * g);
                }
                loss *= (double)tau * tau / k;
            }
            total += loss;
        }
        var st = Read(be, stats);
        st[0] += (float)(total / batch * gradScale);
        Write(be, st, stats);
        Write(be, ds, dstudent);
    }

    public static void MaxTokens(IBackend be, Tensor x, int start, Tensor y)
    {
        int batch = x.Dim(0), t = x.Dim(1), d = x.Dim(2);
        var a = Read(be, x);
        var o = new float[(long)batch * d];
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < d; c++)
            {
                float m = float.NegativeInfinity;
                for (int i = start; i < t; i++) m = Math.Max(m, a[((long)b * t + i) * d + c]);
                o[(long)b * d + c] = m;
            }
        Write(be, o, y);
    }

    public static void MaxTokensBackward(IBackend be, Tensor dy, Tensor x, int start, Tensor dx)
    {
        int batch = x.Dim(0), t = x.Dim(1), d = x.Dim(2);
        var a = Read(be, x);
        var g = Read(be, dy);
        var o = new float[x.Length];
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < d; c++)
            {
                int arg = start;
                for (int i = start + 1; i < t; i++) if (a[((long)b * t + i) * d + c] > a[((long)b * t + arg) * d + c]) arg = i;
                o[((long)b * t + arg) * d + c] = g[(long)b * d + c];
            }
        Write(be, o, dx);
    }

    public static void QkNorm(IBackend be, Tensor qkv, int heads, Tensor qGamma, Tensor qBeta, Tensor kGamma, Tensor kBeta, float eps)
    {
        int width = qkv.Dim(-1) / 3, hd = width / heads;
        long rows = qkv.Length / qkv.Dim(-1);
        var a = Read(be, qkv);
        var (qg, qb, kg, kb) = (Read(be, qGamma), Read(be, qBeta), Read(be, kGamma), Read(be, kBeta));
        for (long r = 0; r < rows; r++)
            for (int part = 0; part < 2; part++)
                for (int h = 0; h < heads; h++)
                {
                    long o = r * 3 * width + (long)part * width + (long)h * hd;
                    double mean = 0, var = 0;
                    for (int i = 0; i < hd; i++) mean += a[o + i];
                    mean /= hd;
                    for (int i = 0; i < hd; i++) { double e = a[o + i] - mean; var += e * e; }
                    float rstd = (float)(1 / Math.Sqrt(var / hd + eps));
                    var (g, bt) = part == 0 ? (qg, qb) : (kg, kb);
                    for (int i = 0; i < hd; i++) a[o + i] = (float)(a[o + i] - mean) * rstd * g[i] + bt[i];
                }
        Write(be, a, qkv);
    }

    public static void QkNormBackward(IBackend be, Tensor dqkv, Tensor qkv, int heads, Tensor qGamma, Tensor kGamma, float eps,
        Tensor dqGamma, Tensor dqBeta, Tensor dkGamma, Tensor dkBeta)
    {
        int width = qkv.Dim(-1) / 3, hd = width / heads;
        long rows = qkv.Length / qkv.Dim(-1);
        var x = Read(be, qkv);
        var g = Read(be, dqkv);
        var (qg, kg) = (Read(be, qGamma), Read(be, kGamma));
        var (dqg, dqb, dkg, dkb) = (Read(be, dqGamma), Read(be, dqBeta), Read(be, dkGamma), Read(be, dkBeta));
        var xh = new double[hd];
        var gy = new double[hd];
        for (long r = 0; r < rows; r++)
            for (int part = 0; part < 2; part++)
                for (int h = 0; h < heads; h++)
                {
                    long o = r * 3 * width + (long)part * width + (long)h * hd;
                    var (gamma, dGamma, dBeta) = part == 0 ? (qg, dqg, dqb) : (kg, dkg, dkb);
                    double mean = 0, var = 0;
                    for (int i = 0; i < hd; i++) mean += x[o + i];
                    mean /= hd;
                    for (int i = 0; i < hd; i++) { double e = x[o + i] - mean; var += e * e; }
                    double rstd = 1 / Math.Sqrt(var / hd + eps);
                    double meanG = 0, meanGx = 0;
                    for (int i = 0; i < hd; i++)
                    {
                        xh[i] = (x[o + i] - mean) * rstd;
                        dGamma[i] += (float)(g[o + i] * xh[i]);
                        dBeta[i] += g[o + i];
                        gy[i] = g[o + i] * gamma[i];
                        meanG += gy[i];
                        meanGx += gy[i] * xh[i];
                    }
                    meanG /= hd;
                    meanGx /= hd;
                    for (int i = 0; i < hd; i++) g[o + i] = (float)(rstd * (gy[i] - meanG - xh[i] * meanGx));
                }
        Write(be, g, dqkv);
        Write(be, dqg, dqGamma);
        Write(be, dqb, dqBeta);
        Write(be, dkg, dkGamma);
        Write(be, dkb, dkBeta);
    }

    public static void UnfoldPatches(IBackend be, Tensor images, Tensor y, int patch)
    {
        int batch = images.Dim(0), ch = images.Dim(1), h = images.Dim(2), w = images.Dim(3);
        int gh = h / patch, gw = w / patch, pd = ch * patch * patch;
        if (y.Dim(1) != gh * gw || y.Dim(2) != pd) throw new ArgumentException($"UnfoldPatches: {images} into {y}");
        var a = Read(be, images);
        var o = new float[y.Length];
        for (int b = 0; b < batch; b++)
            for (int gy = 0; gy < gh; gy++)
                for (int gx = 0; gx < gw; gx++)
                {
                    long dst = ((long)b * gh * gw + gy * gw + gx) * pd;
                    for (int c = 0; c < ch; c++)
                        for (int py = 0; py < patch; py++)
                            for (int px = 0; px < patch; px++)
                                o[dst + (c * patch + py) * patch + px] = a[(((long)b * ch + c) * h + gy * patch + py) * w + gx * patch + px];
                }
        Write(be, o, y);
    }

    public static void CrossAttention(IBackend be, Tensor q, Tensor kv, Tensor y, int heads, float scale)
    {
        int batch = kv.Dim(0), n = kv.Dim(1), width = kv.Dim(2) / 2, hd = width / heads, l = q.Dim(1);
        if (q.Dim(2) != width || (q.Dim(0) != 1 && q.Dim(0) != batch) || y.Length != (long)batch * l * width)
            throw new ArgumentException($"CrossAttention: q {q}, kv {kv}, y {y}, {heads} heads");
        var qs = Read(be, q);
        var ks = Read(be, kv);
        var o = new float[y.Length];
        var s = new double[n];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < l; i++)
                for (int h = 0; h < heads; h++)
                {
                    long qo = ((long)(q.Dim(0) == 1 ? 0 : b) * l + i) * width + (long)h * hd;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < n; j++)
                    {
                        long ko = ((long)b * n + j) * 2 * width + (long)h * hd;
                        double dot = 0;
                        for (int c = 0; c < hd; c++) dot += (double)qs[qo + c] * ks[ko + c];
                        s[j] = dot * scale;
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) sum += s[j] = Math.Exp(s[j] - max);
                    long yo = ((long)b * l + i) * width + (long)h * hd;
                    for (int c = 0; c < hd; c++)
                    {
                        double acc = 0;
                        for (int j = 0; j < n; j++) acc += s[j] * ks[((long)b * n + j) * 2 * width + width + (long)h * hd + c];
                        o[yo + c] = (float)(acc / sum);
                    }
                }
        Write(be, o, y);
    }

    public static void CrossAttentionBackward(IBackend be, Tensor dy, Tensor q, Tensor kv, Tensor dq, Tensor dkv, int heads, float scale)
    {
        int batch = kv.Dim(0), n = kv.Dim(1), width = kv.Dim(2) / 2, hd = width / heads, l = q.Dim(1);
        bool shared = q.Dim(0) == 1;
        var qs = Read(be, q);
        var ks = Read(be, kv);
        var g = Read(be, dy);
        var dqs = new double[q.Length];
        var dks = new float[kv.Length];
        var pr = new double[n];
        var dp = new double[n];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < l; i++)
                for (int h = 0; h < heads; h++)
                {
                    long qo = ((long)(shared ? 0 : b) * l + i) * width + (long)h * hd;
                    long yo = ((long)b * l + i) * width + (long)h * hd;
                    long K(int j) => ((long)b * n + j) * 2 * width + (long)h * hd;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < n; j++)
                    {
                        double dot = 0;
                        for (int c = 0; c < hd; c++) dot += (double)qs[qo + c] * ks[K(j) + c];
                        pr[j] = dot * scale;
                        max = Math.Max(max, pr[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) sum += pr[j] = Math.Exp(pr[j] - max);
                    double pdp = 0;
                    for (int j = 0; j < n; j++)
                    {
                        pr[j] /= sum;
                        double acc = 0;
                        for (int c = 0; c < hd; c++) acc += (double)g[yo + c] * ks[K(j) + width + c];
                        dp[j] = acc;
                        pdp += pr[j] * acc;
                    }
                    for (int j = 0; j < n; j++)
                    {
                        double ds = pr[j] * (dp[j] - pdp) * scale;
                        for (int c = 0; c < hd; c++)
                        {
                            dqs[qo + c] += ds * ks[K(j) + c];
                            dks[K(j) + c] += (float)(ds * qs[qo + c]);
                            dks[K(j) + width + c] += (float)(pr[j] * g[yo + c]);
                        }
                    }
                }
        Write(be, dqs.Select(x => (float)x).ToArray(), dq);
        Write(be, dks, dkv);
    }

    /// <summary>softmax over keys 0…i of q_i·k·scale, in double per row (the text tower's only attention: rows are short).</summary>
    public static void CausalAttention(IBackend be, Tensor qkv, Tensor y, int heads, float scale)
    {
        int batch = qkv.Dim(0), n = qkv.Dim(1), width = qkv.Dim(2) / 3, hd = width / heads;
        if (qkv.Rank != 3 || qkv.Dim(2) != 3 * heads * hd || y.Length != (long)batch * n * width)
            throw new ArgumentException($"CausalAttention: {qkv} with {heads} heads into {y}");
        var a = Read(be, qkv);
        var o = new float[y.Length];
        var s = new double[n];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < n; i++)
                {
                    long qi = ((long)(b * n + i) * 3) * width + h * hd;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j <= i; j++)
                    {
                        long kj = ((long)(b * n + j) * 3 + 1) * width + h * hd;
                        double dot = 0;
                        for (int c = 0; c < hd; c++) dot += (double)a[qi + c] * a[kj + c];
                        s[j] = dot * scale;
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) sum += s[j] = Math.Exp(s[j] - max);
                    long yi = (long)(b * n + i) * width + h * hd;
                    for (int j = 0; j <= i; j++)
                    {
                        long vj = ((long)(b * n + j) * 3 + 2) * width + h * hd;
                        double w = s[j] / sum;
                        for (int c = 0; c < hd; c++) o[yi + c] += (float)(w * a[vj + c]);
                    }
                }
        Write(be, o, y);
    }

    // --- the convolutional tokenizer's ops (3×3, stride 1, padding 1; max pool 3×3, stride 2, padding 1) ---

    /// <summary>Pooled size of MaxPool2d(3, 2, 1) on a side of n.</summary>
    public static int PooledSize(int n) => (n - 1) / 2 + 1;

    private static void CheckConv(Tensor x, Tensor cols, int h, int w, bool channelsFirst, out int batch, out int c)
    {
        batch = x.Dim(0);
        c = channelsFirst ? x.Dim(1) : x.Dim(-1);
        bool shapeOk = channelsFirst ? x.Rank == 4 && x.Dim(2) == h && x.Dim(3) == w : x.Length == (long)batch * h * w * c;
        if (!shapeOk || cols.Length != (long)batch * h * w * c * 9)
            throw new ArgumentException($"Im2Col3x3: {x} ({h}×{w}, {(channelsFirst ? "channels first" : "channels last")}) into {cols}");
    }

    public static void Im2Col3x3(IBackend be, Tensor x, Tensor cols, int h, int w, bool channelsFirst)
    {
        CheckConv(x, cols, h, w, channelsFirst, out int batch, out int c);
        var src = Read(be, x);
        var o = new float[cols.Length];
        long at = 0;
        for (int b = 0; b < batch; b++)
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++)
                    for (int ch = 0; ch < c; ch++)
                        for (int kh = 0; kh < 3; kh++)
                            for (int kw = 0; kw < 3; kw++, at++)
                            {
                                int iy = y + kh - 1, ix = xx + kw - 1;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                o[at] = channelsFirst ? src[(((long)b * c + ch) * h + iy) * w + ix] : src[(((long)b * h + iy) * w + ix) * c + ch];
                            }
        Write(be, o, cols);
    }

    public static void Im2Col3x3Backward(IBackend be, Tensor dcols, Tensor dx, int h, int w)
    {
        CheckConv(dx, dcols, h, w, false, out int batch, out int c);
        var g = Read(be, dcols);
        var o = new float[dx.Length];
        for (int b = 0; b < batch; b++)
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++)
                    for (int ch = 0; ch < c; ch++)
                    {
                        float sum = 0;
                        for (int kh = 0; kh < 3; kh++)
                            for (int kw = 0; kw < 3; kw++)
                            {
                                int oy = y - kh + 1, ox = xx - kw + 1; // the output pixel whose window holds this one at (kh, kw)
                                if (oy < 0 || oy >= h || ox < 0 || ox >= w) continue;
                                sum += g[(((long)b * h + oy) * w + ox) * c * 9 + ch * 9 + kh * 3 + kw];
                            }
                        o[(((long)b * h + y) * w + xx) * c + ch] = sum;
                    }
        Write(be, o, dx);
    }

    /// <summary>The flat pixel index (y·W + x) of the first maximum of the pooling window at (oy, ox), channel ch.</summary>
    internal static int PoolArgMax(ReadOnlySpan<float> x, long imageBase, int h, int w, int c, int ch, int oy, int ox)
    {
        int best = -1;
        float m = 0;
        for (int kh = 0; kh < 3; kh++)
        {
            int iy = 2 * oy + kh - 1;
            if (iy < 0 || iy >= h) continue;
            for (int kw = 0; kw < 3; kw++)
            {
                int ix = 2 * ox + kw - 1;
                if (ix < 0 || ix >= w) continue;
                float v = x[(int)(imageBase + ((long)iy * w + ix) * c + ch)];
                if (best < 0 || v > m) { m = v; best = iy * w + ix; }
            }
        }
        return best;
    }

    private static void CheckPool(Tensor x, Tensor y, int h, int w, out int batch, out int c)
    {
        batch = x.Dim(0);
        c = x.Dim(-1);
        if (x.Length != (long)batch * h * w * c || y.Length != (long)batch * PooledSize(h) * PooledSize(w) * c)
            throw new ArgumentException($"MaxPool3x3s2: {x} ({h}×{w}) into {y}");
    }

    public static void MaxPool3x3s2(IBackend be, Tensor x, Tensor y, int h, int w)
    {
        CheckPool(x, y, h, w, out int batch, out int c);
        var src = Read(be, x);
        int ho = PooledSize(h), wo = PooledSize(w);
        var o = new float[y.Length];
        for (int b = 0; b < batch; b++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                    for (int ch = 0; ch < c; ch++)
                        o[(((long)b * ho + oy) * wo + ox) * c + ch] = src[(int)((long)b * h * w * c + (long)PoolArgMax(src, (long)b * h * w * c, h, w, c, ch, oy, ox) * c + ch)];
        Write(be, o, y);
    }

    public static void MaxPool3x3s2Backward(IBackend be, Tensor dy, Tensor x, Tensor dx, int h, int w)
    {
        CheckPool(x, dy, h, w, out int batch, out int c);
        if (dx.Length != x.Length) throw new ArgumentException($"MaxPool3x3s2Backward: dx {dx} for {x}");
        var src = Read(be, x);
        var g = Read(be, dy);
        int ho = PooledSize(h), wo = PooledSize(w);
        var o = new float[dx.Length];
        for (int b = 0; b < batch; b++)
        {
            long xb = (long)b * h * w * c;
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                    for (int ch = 0; ch < c; ch++)
                        o[xb + (long)PoolArgMax(src, xb, h, w, c, ch, oy, ox) * c + ch] += g[(((long)b * ho + oy) * wo + ox) * c + ch];
        }
        Write(be, o, dx);
    }

    // --- CCT's sequence pooling (Nn.SeqPool) ---

    internal static void CheckSeqPool(string op, Tensor x, Tensor scores, Tensor weights, Tensor pooled)
    {
        if (x.Rank != 3) throw new ArgumentException($"{op}: x {x} is not (B, N, D)");
        long bn = (long)x.Dim(0) * x.Dim(1);
        if (scores.Length != bn || weights.Length != bn || weights.DType != DType.F32 || pooled.Length != (long)x.Dim(0) * x.Dim(2))
            throw new ArgumentException($"{op}: x {x}, scores {scores}, weights {weights} (F32), pooled {pooled}");
    }

    public static void SeqPool(IBackend be, Tensor x, Tensor scores, Tensor weights, Tensor y)
    {
        CheckSeqPool("SeqPool", x, scores, weights, y);
        int batch = x.Dim(0), n = x.Dim(1), d = x.Dim(2);
        var a = Read(be, x);
        var s = Read(be, scores);
        var o = new float[(long)batch * d];
        for (int b = 0; b < batch; b++)
        {
            var row = s.AsSpan(b * n, n);
            float m = float.NegativeInfinity, sum = 0;
            foreach (var v in row) m = Math.Max(m, v);
            for (int i = 0; i < n; i++) sum += row[i] = MathF.Exp(row[i] - m);
            for (int i = 0; i < n; i++) row[i] /= sum;
            for (int i = 0; i < n; i++)
                for (int c = 0; c < d; c++) o[(long)b * d + c] += row[i] * a[((long)b * n + i) * d + c];
        }
        Write(be, s, weights);
        Write(be, o, y);
    }

    public static void SeqPoolBackward(IBackend be, Tensor dy, Tensor x, Tensor weights, Tensor dx, Tensor dscores)
    {
        CheckSeqPool("SeqPoolBackward", x, dscores, weights, dy);
        if (dx.Length != x.Length) throw new ArgumentException($"SeqPoolBackward: dx {dx} for {x}");
        int batch = x.Dim(0), n = x.Dim(1), d = x.Dim(2);
        var a = Read(be, x);
        var w = Read(be, weights);
        var g = Read(be, dy);
        var ds = new float[(long)batch * n];
        var o = new float[x.Length];
        for (int b = 0; b < batch; b++)
        {
            float dot = 0;
            for (int i = 0; i < n; i++)
            {
                float dw = 0;
                for (int c = 0; c < d; c++) dw += a[((long)b * n + i) * d + c] * g[(long)b * d + c];
                ds[b * n + i] = dw;
                dot += w[b * n + i] * dw;
            }
            for (int i = 0; i < n; i++)
            {
                float wi = w[b * n + i];
                ds[b * n + i] = wi * (ds[b * n + i] - dot);
                for (int c = 0; c < d; c++) o[((long)b * n + i) * d + c] = wi * g[(long)b * d + c];
            }
        }
        Write(be, o, dx);
        Write(be, ds, dscores);
    }
}
