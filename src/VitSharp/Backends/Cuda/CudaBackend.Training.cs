using VitSharp.Backends.Cuda.Native;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// Training on the GPU: every backward op, the loss, clipping and the optimizer sweeps, queued on the one stream like
/// the forward ops (kernels in Kernels/training.cu). Mixed precision as AMP does it: activations and matrix operands in
/// <see cref="IBackend.ComputeType"/> (bf16) with fp32 accumulation; parameter gradients, master weights and optimizer
/// state in fp32 (bf16 operands accumulate straight into fp32 gradients in cuBLASLt). No atomics anywhere: reductions
/// run in fixed orders, so a seed on a given GPU reproduces the same weights.
/// Attention training keeps the probabilities (B, H, N, N): q/k/v are split into per-head matrices and the products run
/// as strided-batched GEMMs over B·H, with the softmax and its backward in our kernels.
/// </summary>
public sealed unsafe partial class CudaBackend : ITrainingBackend
{
    private string Sfx(Tensor t) => t.DType switch
    {
        DType.F32 => "f32",
        DType.BF16 => "bf16",
        _ => throw new ArgumentException($"CUDA training op got {t}"),
    };

    private void CheckType(Tensor t, params DType[] allowed)
    {
        CheckDevice(t);
        if (Array.IndexOf(allowed, t.DType) < 0) throw new ArgumentException($"CUDA backend: {t} must be {string.Join(" or ", allowed)}");
    }

    private void Gemm(bool ta, bool tb, int m, int n, int k, Tensor a, int lda, long sa, Tensor b, int ldb, long sb, Tensor c, int ldc, long sc,
        int batch = 1, float alpha = 1f, float beta = 0f, long offA = 0, long offB = 0, long offC = 0)
    {
        int es = ComputeType.SizeOf(), cs = c.DType.SizeOf();
        var start = _profile?.Begin();
        _gemm.RunGeneral(ta, tb, m, n, k, ComputeType, a.Pointer + (nint)(offA * es), lda, sa, b.Pointer + (nint)(offB * es), ldb, sb,
            c.DType, c.Pointer + (nint)(offC * cs), ldc, sc, batch, alpha, beta);
        if (start is not null)
            _profile!.End($"gemm {(ta ? "T" : "N")}{(tb ? "T" : "N")} {m}x{n}x{k}{(batch > 1 ? $" ×{batch}" : "")} -> {c.DType}{(beta != 0 ? "+=" : "")}", start);
    }

    /// <summary>dst (fp32) += column sums of src (rows × cols, row stride <paramref name="stride"/>), deterministic.</summary>
    private void ColumnSums(Tensor src, int rows, int cols, long stride, Tensor dst)
    {
        CheckType(dst, DType.F32);
        bool vec = cols % 8 == 0 && stride % 8 == 0 && Aligned16(src);
        // Vectorised: 8 columns a thread, short row chunks for parallelism; else a column a thread, 64 chunks.
        var (rpc, chunks) = RowChunks(rows, vec);
        using var partial = Allocate([chunks * cols], DType.F32);
        if (vec)
            Launch("training.cu", "colsum_partial_vec8_" + Sfx(src), (uint)((cols / 8 + 127) / 128), (uint)chunks, 1, 128, 1, 1, 0,
                src.Pointer, partial.Pointer, rows, cols, stride, rpc);
        else
            Launch("training.cu", "colsum_partial_" + Sfx(src), (uint)((cols + 255) / 256), (uint)chunks, 1, 256, 1, 1, 0,
                src.Pointer, partial.Pointer, rows, cols, stride, rpc);
        Launch("training.cu", "colsum_final", (uint)((cols + 7) / 8), 1, 1, 256, 1, 1, 0, partial.Pointer, dst.Pointer, chunks, cols); // a warp a column
    }

    /// <summary>8-element chunks per lane for the register-resident row kernels (1–4), or 0 when the row does not fit
    /// them (width not a multiple of 8, over 1024, or a misaligned operand).</summary>
    private static int VecChunks(int d, params ReadOnlySpan<Tensor> ts)
    {
        if (d % 8 != 0 || d > 1024 || !Aligned16(ts)) return 0;
        return (d / 8 + 31) / 32;
    }

    private void LaunchTrain(string name, long n, params ReadOnlySpan<long> args) => LaunchGridStride("training.cu", name, n, args);

    /// <summary>Rows per chunk of a two-stage column reduction: short chunks for the 8-column kernels (parallelism),
    /// 64 chunks for the column-a-thread ones. The chunk count fixes the order of the sum.</summary>
    private static (int Rpc, int Chunks) RowChunks(int rows, bool vec)
    {
        int rpc = vec ? Math.Max(16, (rows + 1023) / 1024) : Math.Max(32, (rows + 63) / 64);
        return (rpc, (rows + rpc - 1) / rpc);
    }

    public void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, bool accumulateDx = false)
    {
        int n = w.Dim(0), k = w.Dim(1);
        int rows = checked((int)(x.Length / k));
        if (dy.Length != (long)rows * n) throw new ArgumentException($"LinearBackward: dy {dy} for input {x} and weight {w}");
        if (dw.Length != (long)n * k) throw new ArgumentException($"LinearBackward: dW {dw} for weight {w}");
        CheckCompute(dy, x, w);
        CheckType(dw, DType.F32, ComputeType);
        if (dx is not null)
        {
            CheckCompute(dx);
            Gemm(false, false, rows, k, n, dy, n, 0, w, k, 0, dx, k, 0, beta: accumulateDx ? 1f : 0f);   // dx = dy·W
        }
        Gemm(true, false, n, k, rows, dy, n, 0, x, k, 0, dw, k, 0, beta: 1f);                             // dW += dyᵀ·x
        if (db is not null) ColumnSums(dy, rows, n, n, db);
    }

    public void LayerNormTrain(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        CheckCompute(x, gamma, beta, y);
        CheckType(mean, DType.F32, ComputeType);
        CheckType(rstd, mean.DType);
        int d = x.Dim(-1), rows = checked((int)(x.Length / d));
        int chunks = VecChunks(d, x, gamma, beta, y);
        Launch("training.cu", chunks > 0 ? $"layernorm_train_vec_c{chunks}_{_suffix}_{Sfx(mean)}" : $"layernorm_train_{_suffix}_{Sfx(mean)}",
            (uint)((rows + 7) / 8), 1, 1, 256, 1, 1, 0,
            x.Pointer, gamma.Pointer, beta.Pointer, y.Pointer, mean.Pointer, rstd.Pointer, rows, d, Bits(eps));
    }

    public void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dx, Tensor dgamma, Tensor dbeta,
        bool accumulateDx = false)
    {
        CheckCompute(dy, x, gamma, dx);
        CheckType(mean, DType.F32, ComputeType);
        CheckType(rstd, mean.DType);
        CheckType(dgamma, DType.F32);
        CheckType(dbeta, DType.F32);
        int d = x.Dim(-1), rows = checked((int)(x.Length / d));
        string s = $"{_suffix}_{Sfx(mean)}";
        int vec = VecChunks(d, dy, x, gamma, dx);
        Launch("training.cu", vec > 0 ? $"layernorm_backward_vec_c{vec}_{s}" : "layernorm_backward_" + s, (uint)((rows + 7) / 8), 1, 1, 256, 1, 1, 0,
            dy.Pointer, x.Pointer, gamma.Pointer, mean.Pointer, rstd.Pointer, dx.Pointer, rows, d, accumulateDx ? 1 : 0);
        bool pvec = d % 8 == 0 && Aligned16(dy, x);
        var (rpc, chunks) = RowChunks(rows, pvec);
        using var partial = Allocate([chunks * 2 * d], DType.F32);
        if (pvec)
            Launch("training.cu", "layernorm_param_partial_vec8_" + s, (uint)((d / 8 + 127) / 128), (uint)chunks, 1, 128, 1, 1, 0,
                dy.Pointer, x.Pointer, mean.Pointer, rstd.Pointer, partial.Pointer, rows, d, rpc);
        else
            Launch("training.cu", "layernorm_param_partial_" + s, (uint)((d + 255) / 256), (uint)chunks, 1, 256, 1, 1, 0,
                dy.Pointer, x.Pointer, mean.Pointer, rstd.Pointer, partial.Pointer, rows, d, rpc);
        Launch("training.cu", "layernorm_param_final", (uint)((d + 7) / 8), 1, 1, 256, 1, 1, 0, // a warp a channel
            partial.Pointer, dgamma.Pointer, dbeta.Pointer, chunks, d);
    }

    public void ActivationBackward(Activation act, Tensor dy, Tensor pre, Tensor dx)
    {
        CheckCompute(dy, pre, dx);
        if (dy.Length != pre.Length || dx.Length != pre.Length) throw new ArgumentException($"ActivationBackward: {dy}, {pre} -> {dx}");
        if (pre.Length % 8 == 0 && Aligned16(dy, pre, dx))
            LaunchTrain("activation_backward_vec8_" + _suffix, pre.Length / 8, dy.Pointer, pre.Pointer, dx.Pointer, pre.Length / 8, (int)act);
        else
            LaunchTrain("activation_backward_" + _suffix, pre.Length, dy.Pointer, pre.Pointer, dx.Pointer, pre.Length, (int)act);
    }

    /// <summary>Attention with probabilities, the training forward: S = scale·Q·Kᵀ (fp32), P = softmax(S) in the
    /// compute type (saved in <paramref name="probs"/>), O = P·V; strided-batched over batch × heads.</summary>
    private void AttentionMaterialised(Tensor qkv, Tensor y, int heads, float scale, Tensor probs)
    {
        int batch = qkv.Dim(0), n = qkv.Dim(1), width = qkv.Dim(2) / 3, hd = width / heads, bh = batch * heads;
        long headElems = (long)n * hd, block = (long)bh * headElems;
        using var qh = Allocate([3 * (int)block], ComputeType);
        SplitHeads(qkv, qh, batch, n, 3, heads, hd, toHeads: true);
        // S rows padded to a multiple of 8 floats: 16-byte aligned rows let cuBLASLt pick a tensor-core kernel (with
        // 65-float rows the product ran 4.7× slower than P·V on an H200).
        int lds = ScoreStride(n);
        using var s = Allocate([bh * n * lds], DType.F32);
        Gemm(false, true, n, n, hd, qh, hd, headElems, qh, hd, headElems, s, lds, (long)n * lds, bh, alpha: scale, offB: block); // S = Q·Kᵀ
        Launch("training.cu", "softmax_rows_" + _suffix, (uint)(((long)bh * n + 7) / 8), 1, 1, 256, 1, 1, 0, s.Pointer, probs.Pointer, (long)bh * n, n, lds);
        using var o = Allocate([(int)block], ComputeType);
        Gemm(false, false, n, hd, n, probs, n, (long)n * n, qh, hd, headElems, o, hd, headElems, bh, offB: 2 * block);      // O = P·V
        SplitHeads(y, o, batch, n, 1, heads, hd, toHeads: false);
    }

    /// <summary>Row stride of the fp32 score matrices S and dP: n rounded up to 8 floats (32 bytes).</summary>
    private static int ScoreStride(int n) => (n + 7) & ~7;

    /// <summary>(B, N, G, H, hd) ↔ (G, B, H, N, hd): tokens-major projections to per-head matrices and back.</summary>
    private void SplitHeads(Tensor tokens, Tensor headsT, int batch, int n, int g, int heads, int hd, bool toHeads)
    {
        long per = (long)n * g * heads * hd;
        var (src, dst) = toHeads ? (tokens, headsT) : (headsT, tokens);
        bool vec = hd % 8 == 0 && Aligned16(src, dst);
        Launch("training.cu", (vec ? "split_heads_vec8_" : "split_heads_") + _suffix, PerImageBlocks(vec ? per / 8 : per, batch), (uint)batch, 1, 256, 1, 1, 0,
            src.Pointer, dst.Pointer, batch, n, g, heads, hd, toHeads ? 0 : 1);
    }

    public void AttentionBackward(Tensor dy, Tensor qkv, Tensor probs, Tensor dqkv, int heads, float scale)
    {
        CheckCompute(dy, qkv, probs, dqkv);
        int batch = qkv.Dim(0), n = qkv.Dim(1), width = qkv.Dim(2) / 3, hd = width / heads, bh = batch * heads;
        if (probs.Length != (long)bh * n * n) throw new ArgumentException($"AttentionBackward: probs {probs} for {qkv}");
        long headElems = (long)n * hd, block = (long)bh * headElems, nn = (long)n * n;
        using var qh = Allocate([3 * (int)block], ComputeType);
        SplitHeads(qkv, qh, batch, n, 3, heads, hd, toHeads: true);
        using var doh = Allocate([(int)block], ComputeType);
        SplitHeads(dy, doh, batch, n, 1, heads, hd, toHeads: true);
        using var dqh = Allocate([3 * (int)block], ComputeType);
        int ldp = ScoreStride(n);
        using var dp = Allocate([bh * n * ldp], DType.F32);
        Gemm(false, true, n, n, hd, doh, hd, headElems, qh, hd, headElems, dp, ldp, (long)n * ldp, bh, offB: 2 * block); // dP = dO·Vᵀ
        Gemm(true, false, n, hd, n, probs, n, nn, doh, hd, headElems, dqh, hd, headElems, bh, offC: 2 * block);       // dV = Pᵀ·dO
        using var ds = Allocate([bh * n * n], ComputeType);
        Launch("training.cu", "softmax_backward_" + _suffix, (uint)(((long)bh * n + 7) / 8), 1, 1, 256, 1, 1, 0,
            probs.Pointer, dp.Pointer, ds.Pointer, (long)bh * n, n, Bits(scale), ldp);                                 // dS (scaled)
        Gemm(false, false, n, hd, n, ds, n, nn, qh, hd, headElems, dqh, hd, headElems, bh, offB: block);              // dQ = dS·K
        Gemm(true, false, n, hd, n, ds, n, nn, qh, hd, headElems, dqh, hd, headElems, bh, offC: block);               // dK = dSᵀ·Q
        SplitHeads(dqkv, dqh, batch, n, 3, heads, hd, toHeads: false);
    }

    /// <summary>Flash-attention training (attention.cu's flash_attn_fwd_lse / flash_bwd_*) for bf16 heads of 64; off with
    /// VITSHARP_FLASH_TRAIN=0 (then probabilities are materialised as before, for comparisons).</summary>
    internal bool FlashTraining { get; set; } = Environment.GetEnvironmentVariable("VITSHARP_FLASH_TRAIN") != "0";

    public bool TrainsAttentionFromLse(int heads, int headDim, int tokens) => FlashTraining && ComputeType == DType.BF16 && headDim == 64;

    private const float Log2E = 1.4426950408889634f;
    private const int FlashRows = 64; // 4 warps × 16 query (or key) rows a block

    public void AttentionTrainLse(Tensor qkv, Tensor y, Tensor lse, int heads, float scale)
    {
        var (batch, n) = CheckFlash(qkv, y, lse, heads, "AttentionTrainLse");
        Launch("attention.cu", "flash_attn_fwd_lse_bf16_hd64_w4", (uint)((n + FlashRows - 1) / FlashRows), (uint)heads, (uint)batch, 128, 1, 1, 0,
            qkv.Pointer, y.Pointer, lse.Pointer, n, heads, Bits(scale * Log2E));
    }

    public void AttentionBackwardLse(Tensor dy, Tensor qkv, Tensor y, Tensor lse, Tensor dqkv, int heads, float scale)
    {
        var (batch, n) = CheckFlash(qkv, y, lse, heads, "AttentionBackwardLse");
        CheckCompute(dy, dqkv);
        if (dy.Length != y.Length || dqkv.Length != qkv.Length || !Aligned16(dy, dqkv))
            throw new ArgumentException($"AttentionBackwardLse: dy {dy}, dqkv {dqkv} for {qkv}");
        long rows = (long)batch * n * heads;
        using var dsum = Allocate([(int)rows], DType.F32);
        Launch("attention.cu", "attn_bwd_dot_bf16", (uint)((rows + 255) / 256), 1, 1, 256, 1, 1, 0,
            dy.Pointer, y.Pointer, dsum.Pointer, n, heads, 64, rows);                                                   // D = Σ dO∘O
        uint blocks = (uint)((n + FlashRows - 1) / FlashRows);
        Launch("attention.cu", "flash_bwd_dq_bf16_hd64_w4", blocks, (uint)heads, (uint)batch, 128, 1, 1, 0,
            qkv.Pointer, dy.Pointer, lse.Pointer, dsum.Pointer, dqkv.Pointer, n, heads, Bits(scale * Log2E), Bits(scale));   // dQ
        Launch("attention.cu", "flash_bwd_dkv_bf16_hd64_w4", blocks, (uint)heads, (uint)batch, 128, 1, 1, 0,
            qkv.Pointer, dy.Pointer, lse.Pointer, dsum.Pointer, dqkv.Pointer, n, heads, Bits(scale * Log2E), Bits(scale));   // dK, dV
    }

    private (int Batch, int N) CheckFlash(Tensor qkv, Tensor y, Tensor lse, int heads, string op)
    {
        CheckCompute(qkv, y);
        CheckDevice(lse);
        int batch = qkv.Dim(0), n = qkv.Dim(1), width = qkv.Dim(2) / 3;
        if (!TrainsAttentionFromLse(heads, width / heads, n) || qkv.Dim(2) != 3 * heads * 64)
            throw new NotSupportedException($"{op}: flash training runs bf16 heads of 64, got {qkv} with {heads} heads ({ComputeType})");
        if (y.Length != (long)batch * n * width || lse.DType != DType.F32 || lse.Length != (long)batch * heads * n || !Aligned16(qkv, y))
            throw new ArgumentException($"{op}: {qkv} -> {y}, lse {lse}");
        return (batch, n);
    }

    public void PatchEmbedBackward(Tensor dy, Tensor images, Tensor dw, Tensor db, int patch)
    {
        CheckCompute(dy, images);
        int batch = images.Dim(0), c = images.Dim(1), h = images.Dim(2), wd = images.Dim(3);
        int np = (h / patch) * (wd / patch), kdim = c * patch * patch, dim = dw.Dim(0);
        using var cols = Allocate([batch * np, kdim], ComputeType);
        int es = ComputeType.SizeOf();
        bool vec = patch * es % 16 == 0 && wd * es % 16 == 0 && Aligned16(images, cols);
        Launch("elementwise.cu", "im2col_" + _suffix, PerImageBlocks((long)np * c * patch, batch), (uint)batch, 1, 256, 1, 1, 0,
            images.Pointer, cols.Pointer, c, h, wd, patch, vec ? 1 : 0);
        CheckType(dw, DType.F32, ComputeType);
        Gemm(true, false, dim, kdim, batch * np, dy, dim, 0, cols, kdim, 0, dw, kdim, 0, beta: 1f);                 // dW += dyᵀ·cols
        ColumnSums(dy, batch * np, dim, dim, db);
    }

    public void EmbedBackward(Tensor dx, Tensor dpatches, Tensor? dcls, Tensor dpos)
    {
        CheckCompute(dx, dpatches);
        int batch = dx.Dim(0), t = dx.Dim(1), d = dx.Dim(2);
        int prefix = dcls is null ? 0 : 1, np = t - prefix;
        Launch("training.cu", "embed_backward_patches_" + _suffix, PerImageBlocks((long)np * d, batch), (uint)batch, 1, 256, 1, 1, 0,
            dx.Pointer, dpatches.Pointer, np, d, prefix);
        ColumnSums(dx, batch, t * d, (long)t * d, dpos);
        if (dcls is not null) ColumnSums(dx, batch, d, (long)t * d, dcls);
    }

    /// <summary>Backward of <see cref="EmbedTokens"/> from the existing kernels: the patches' rows as
    /// <see cref="EmbedBackward"/> copies them (k prefix rows skipped), each prefix parameter += its rows' column sums over
    /// the batch, dpos += the column sums of every row.</summary>
    public void EmbedTokensBackward(Tensor dx, Tensor dpatches, IReadOnlyList<Tensor> dprefix, Tensor dpos)
    {
        CheckCompute(dx, dpatches);
        int batch = dx.Dim(0), t = dx.Dim(1), d = dx.Dim(2), np = dpatches.Dim(1);
        int k = t - np;
        if (dprefix.Sum(p => p.Length) != (long)k * d || dpos.Length != (long)t * d)
            throw new ArgumentException($"EmbedTokensBackward: {dx} -> {dpatches}, {dprefix.Count} prefix gradients, {dpos}");
        Launch("training.cu", "embed_backward_patches_" + _suffix, PerImageBlocks((long)np * d, batch), (uint)batch, 1, 256, 1, 1, 0,
            dx.Pointer, dpatches.Pointer, np, d, k);
        ColumnSums(dx, batch, t * d, (long)t * d, dpos);
        long at = 0;
        foreach (var p in dprefix)
        {
            int cols = checked((int)p.Length);
            // Rows b·T·D + at … of dx: a view that starts at the prefix token and ends with the last sample's copy of it.
            ColumnSums(dx.View([checked((int)((long)(batch - 1) * t * d + cols))], at), batch, cols, (long)t * d, p);
            at += cols;
        }
    }

    public void MeanTokensBackward(Tensor dy, int start, Tensor dx)
    {
        CheckCompute(dy, dx);
        int batch = dx.Dim(0), t = dx.Dim(1), d = dx.Dim(2);
        Launch("training.cu", "mean_tokens_backward_" + _suffix, PerImageBlocks((long)t * d, batch), (uint)batch, 1, 256, 1, 1, 0,
            dy.Pointer, dx.Pointer, t, d, start);
    }

    public void SelectTokenBackward(Tensor dy, int index, Tensor dx)
    {
        CheckCompute(dy, dx);
        int batch = dx.Dim(0), t = dx.Dim(1), d = dx.Dim(2);
        Launch("training.cu", "select_token_backward_" + _suffix, PerImageBlocks((long)t * d, batch), (uint)batch, 1, 256, 1, 1, 0,
            dy.Pointer, dx.Pointer, t, d, index);
    }

    public float SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor? dlogits, float gradScale = 1f)
    {
        using var stats = Allocate([4], DType.F32);
        Zero(stats);
        CrossEntropy(logits, targets, null, dlogits, gradScale, stats);
        var host = new float[4];
        CopyToHost(stats, host);
        return host[0];
    }

    public void CrossEntropyStats(Tensor logits, Tensor targets, Tensor? labels, Tensor dlogits, float gradScale, Tensor stats) =>
        CrossEntropy(logits, targets, labels, dlogits, gradScale, stats);

    private void CrossEntropy(Tensor logits, Tensor targets, Tensor? labels, Tensor? dlogits, float gradScale, Tensor stats)
    {
        CheckCompute(logits);
        if (dlogits is not null) CheckCompute(dlogits);
        CheckType(targets, DType.F32);
        CheckType(stats, DType.F32);
        if (labels is not null) CheckType(labels, DType.F32);
        int batch = logits.Dim(0), k = logits.Dim(1);
        if (targets.Length != logits.Length) throw new ArgumentException($"SoftmaxCrossEntropy: targets {targets} for logits {logits}");
        using var rows = Allocate([2 * batch], DType.F32);
        Launch("training.cu", "softmax_xent_" + _suffix, (uint)batch, 1, 1, k >= 256 ? 256u : 32u, 1, 1, 0,
            logits.Pointer, targets.Pointer, dlogits?.Pointer ?? 0, rows.Pointer, labels?.Pointer ?? 0, k, Bits(gradScale / batch));
        Launch("training.cu", "xent_final", 1, 1, 1, 256, 1, 1, 0, rows.Pointer, stats.Pointer, batch, Bits(gradScale));
    }

    public void DistillationLoss(Tensor student, Tensor teacher, DistillationKind kind, float tau, Tensor dstudent, float gradScale, Tensor stats)
    {
        CheckCompute(student, teacher, dstudent);
        CheckType(stats, DType.F32);
        if (student.Rank != 2 || !student.Shape.AsSpan().SequenceEqual(teacher.Shape) || dstudent.Length != student.Length)
            throw new ArgumentException($"DistillationLoss: student {student}, teacher {teacher} -> {dstudent}");
        if (!(tau > 0) || !float.IsFinite(tau)) throw new ArgumentException($"DistillationLoss: temperature {tau} must be > 0");
        int batch = student.Dim(0), k = student.Dim(1);
        bool soft = kind == DistillationKind.Soft;
        float g = soft ? (float)(gradScale * (double)tau / ((double)batch * k)) : gradScale / batch;
        using var rows = Allocate([2 * batch], DType.F32);
        Launch("training.cu", "distill_" + _suffix, (uint)batch, 1, 1, k >= 256 ? 256u : 32u, 1, 1, 0,
            student.Pointer, teacher.Pointer, dstudent.Pointer, rows.Pointer, k, soft ? 1 : 0, Bits(tau), Bits(g));
        Launch("training.cu", "xent_final", 1, 1, 1, 256, 1, 1, 0, rows.Pointer, stats.Pointer, batch, Bits(gradScale));
    }

    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        CheckCompute(a, b, y);
        if (a.Length != b.Length || a.Length != y.Length) throw new ArgumentException($"Multiply: {a} * {b} -> {y}");
        LaunchTrain("mul_" + _suffix, a.Length, a.Pointer, b.Pointer, y.Pointer, a.Length);
    }

    public void MultiplyRows(Tensor x, Tensor rowScale, Tensor y)
    {
        CheckCompute(x, y);
        CheckType(rowScale, DType.F32);
        int rows = x.Dim(0);
        long per = x.Length / rows;
        if (rowScale.Length != rows || y.Length != x.Length) throw new ArgumentException($"MultiplyRows: {x} * {rowScale} -> {y}");
        Launch("training.cu", "mul_rows_" + _suffix, PerImageBlocks(per, rows), (uint)rows, 1, 256, 1, 1, 0, x.Pointer, rowScale.Pointer, y.Pointer, per);
    }

    public void Scale(Tensor x, float s)
    {
        CheckType(x, DType.F32, ComputeType);
        LaunchTrain("scale_" + Sfx(x), x.Length, x.Pointer, x.Length, Bits(s));
    }

    public void Zero(Tensor x)
    {
        CheckDevice(x);
        Driver.Check(Driver.cuMemsetD8Async(x.Pointer, 0, (nuint)(x.Length * x.DType.SizeOf()), Context.Stream), "cuMemsetD8");
    }

    public void Copy(Tensor src, Tensor dst)
    {
        CheckDevice(src);
        CheckDevice(dst);
        if (src.Length != dst.Length) throw new ArgumentException($"Copy: {src} -> {dst}");
        if (src.DType == dst.DType) { CopyDevice(src, dst); return; }
        if (src.DType == DType.F32 && dst.DType == DType.BF16)
            LaunchElementwise("convert_f32_to_bf16", src.Length, src.Pointer, dst.Pointer, src.Length);
        else if (src.DType == DType.BF16 && dst.DType == DType.F32)
            LaunchElementwise("convert_bf16_to_f32", src.Length, src.Pointer, dst.Pointer, src.Length);
        else throw new NotSupportedException($"Copy: {src.DType} -> {dst.DType}");
    }

    private const int SumBlocks = 528; // 4 per SM on an H200; fixed, so the order of the sum is too

    private Tensor SumSquaresDevice(Tensor x)
    {
        CheckType(x, DType.F32, ComputeType);
        var result = Allocate([2], DType.F32); // one double
        using var partial = Allocate([2 * SumBlocks], DType.F32);
        Launch("training.cu", "sumsq_partial_" + Sfx(x), SumBlocks, 1, 1, 256, 1, 1, 0, x.Pointer, x.Length, partial.Pointer);
        Launch("training.cu", "sumsq_final", 1, 1, 1, 32, 1, 1, 0, partial.Pointer, SumBlocks, result.Pointer);
        return result;
    }

    public double SumSquares(Tensor x)
    {
        using var r = SumSquaresDevice(x);
        var host = new float[2];
        CopyToHost(r, host);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<float, double>(host)[0]; // the 8 bytes the kernel wrote
    }

    public void ClipGradNorm(Tensor grads, float maxNorm, Tensor stats)
    {
        CheckType(grads, DType.F32);
        CheckType(stats, DType.F32);
        using var sumsq = SumSquaresDevice(grads);
        LaunchTrain("clip_by_norm", grads.Length, grads.Pointer, grads.Length, sumsq.Pointer, Bits(maxNorm), stats.Pointer);
    }

    /// <summary>A step's scalars as torch.optim.AdamW computes them (bias corrections in double, like Python floats):
    /// lr/bc1, √bc2 and the decoupled decay factor 1 − lr·wd (exactly 1 without decay).</summary>
    private static (float StepSize, float Bc2Sqrt, float Decay) AdamWScalars(AdamWArgs a)
    {
        double bc1 = 1 - Math.Pow(a.Beta1, a.Step), bc2 = 1 - Math.Pow(a.Beta2, a.Step);
        return ((float)(a.Lr / bc1), (float)Math.Sqrt(bc2), (float)(1 - (double)a.Lr * a.WeightDecay));
    }

    public void AdamWStep(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWArgs a)
    {
        foreach (var t in new[] { param, grad, m, v }) CheckType(t, DType.F32);
        var (stepSize, bc2Sqrt, decay) = AdamWScalars(a);
        LaunchTrain("adamw_step", param.Length, param.Pointer, grad.Pointer, m.Pointer, v.Pointer, param.Length,
            Bits(a.Beta1), Bits(a.Beta2), Bits(a.Eps), Bits(stepSize), Bits(bc2Sqrt), Bits(decay), a.WeightDecay != 0 ? 1 : 0);
    }

    // Decay masks by run list (an optimizer's runs never change): uploaded once, one byte pair per parameter.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, Tensor> _decayMasks = new();

    /// <summary>One sweep over the whole buffer (the per-run kernel's arithmetic, elementwise, so the same numbers).</summary>
    public void AdamWStepRuns(Tensor param, Tensor grad, Tensor m, Tensor v, IReadOnlyList<(long Offset, int Length, bool Decay)> runs, AdamWArgs a)
    {
        foreach (var t in new[] { param, grad, m, v }) CheckType(t, DType.F32);
        long n = param.Length;
        if (!_decayMasks.TryGetValue(runs, out var mask))
        {
            // Gaps between runs (a parameter set's alignment padding) hold zeros in weights, gradients and moments, which
            // the sweep leaves zero: 0 − step·0/(√0 + ε) = 0.
            var host = new float[n];
            long covered = 0;
            foreach (var (off, len, decay) in runs)
            {
                if (off < covered || off + len > n) throw new ArgumentException($"AdamWStepRuns: runs must be in order within the {n} parameters");
                if (decay) Array.Fill(host, 1f, checked((int)off), len);
                covered = off + len;
            }
            mask = Allocate([checked((int)n)], DType.BF16);
            CopyFromHost(host, mask);
            _decayMasks.Add(runs, mask);
        }
        var (stepSize, bc2Sqrt, decayFactor) = AdamWScalars(a);
        LaunchTrain("adamw_step_masked", n, param.Pointer, grad.Pointer, m.Pointer, v.Pointer, mask.Pointer, n,
            Bits(a.Beta1), Bits(a.Beta2), Bits(a.Eps), Bits(stepSize), Bits(bc2Sqrt), Bits(decayFactor));
    }

    public void SgdStep(Tensor param, Tensor grad, Tensor momentum, SgdArgs a)
    {
        foreach (var t in new[] { param, grad, momentum }) CheckType(t, DType.F32);
        LaunchTrain("sgd_step", param.Length, param.Pointer, grad.Pointer, momentum.Pointer, param.Length,
            Bits(a.Lr), Bits(a.Momentum), Bits(a.WeightDecay), a.Nesterov ? 1 : 0, a.FirstStep ? 1 : 0);
    }

    public void EmaUpdate(Tensor ema, Tensor param, float decay)
    {
        CheckType(ema, DType.F32);
        CheckType(param, DType.F32);
        LaunchTrain("ema_update", ema.Length, ema.Pointer, param.Pointer, ema.Length, Bits(decay));
    }
}
