using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>One AdamW step's hyper-parameters (PyTorch's torch.optim.AdamW arithmetic, decoupled weight decay).</summary>
public readonly record struct AdamWArgs(float Lr, float Beta1, float Beta2, float Eps, float WeightDecay, long Step);

/// <summary>DeiT's two distillation losses: <see cref="Hard"/> (cross-entropy against the teacher's arg-max) and
/// <see cref="Soft"/> (KL divergence between the temperature-softened distributions).</summary>
public enum DistillationKind { Hard, Soft }

/// <summary>One SGD step's hyper-parameters (PyTorch's torch.optim.SGD: weight decay added to the gradient, then momentum).</summary>
public readonly record struct SgdArgs(float Lr, float Momentum, float WeightDecay, bool Nesterov, bool FirstStep);

/// <summary>
/// The backward passes and optimizer sweeps that training needs, beside the forward operations of <see cref="IBackend"/>.
/// Conventions (llm.c): parameter gradients are accumulated (+=) so gradient accumulation over micro-batches is free;
/// activation gradients are written (=) unless the argument says accumulate (the residual stream adds into its gradient).
/// </summary>
public interface ITrainingBackend : IBackend
{
    /// <summary>For y = x·Wᵀ + b: dx (=, or += when <paramref name="accumulateDx"/>) = dy·W; dW += dyᵀ·x; db += Σrows dy.
    /// dx may be null (the input needs no gradient).</summary>
    void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, bool accumulateDx = false);

    /// <summary>LayerNorm forward that also saves each row's mean and 1/std (rows) for the backward pass.</summary>
    void LayerNormTrain(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y, Tensor mean, Tensor rstd);

    /// <summary>dx (=, or +=) from dy; dγ += Σ dy·x̂; dβ += Σ dy.</summary>
    void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dx, Tensor dgamma, Tensor dbeta,
        bool accumulateDx = false);

    /// <summary>dx = dy · act'(pre), where pre is the input the activation saw in the forward pass.</summary>
    void ActivationBackward(Activation act, Tensor dy, Tensor pre, Tensor dx);

    /// <summary>Backward of <see cref="IBackend.Attention"/> from its saved probabilities (B, H, N, N): dqkv (=) laid out like qkv.</summary>
    void AttentionBackward(Tensor dy, Tensor qkv, Tensor probs, Tensor dqkv, int heads, float scale);

    /// <summary>Whether self-attention of this shape trains flash-style: the forward saves each score row's log-sum-exp
    /// (B, H, N) instead of the (B, H, N, N) probabilities, and the backward recomputes them tile by tile
    /// (<see cref="AttentionTrainLse"/>, <see cref="AttentionBackwardLse"/>). Default: no, probabilities are saved.</summary>
    bool TrainsAttentionFromLse(int heads, int headDim, int tokens) => false;

    /// <summary>The training forward of flash attention: y as <see cref="IBackend.Attention"/> computes it, and lse (B, H, N)
    /// F32, each row's log2 Σ exp2(scale·log2(e)·s) of the scores s = q·k (the backward's only saved statistic).</summary>
    void AttentionTrainLse(Tensor qkv, Tensor y, Tensor lse, int heads, float scale) =>
        throw new NotSupportedException($"{GetType().Name} does not train attention from a log-sum-exp");

    /// <summary>Backward of <see cref="AttentionTrainLse"/> from qkv, the output y and lse: dqkv (=) laid out like qkv.</summary>
    void AttentionBackwardLse(Tensor dy, Tensor qkv, Tensor y, Tensor lse, Tensor dqkv, int heads, float scale) =>
        throw new NotSupportedException($"{GetType().Name} does not train attention from a log-sum-exp");

    /// <summary>Backward of <see cref="IBackend.PatchEmbed"/> for the parameters only (images need no gradient): dW +=, db +=.</summary>
    void PatchEmbedBackward(Tensor dy, Tensor images, Tensor dw, Tensor db, int patch);

    /// <summary>Backward of <see cref="IBackend.Embed"/>: dpatches (=) = dx without the prefix token; dcls +=; dpos += Σbatch dx.</summary>
    void EmbedBackward(Tensor dx, Tensor dpatches, Tensor? dcls, Tensor dpos);

    /// <summary>Backward of MeanTokens: dx (B, T, D) (=) holds dy/(T-start) on tokens [start, T) and zero before.</summary>
    void MeanTokensBackward(Tensor dy, int start, Tensor dx);

    /// <summary>Backward of SelectToken: dx (=) is zero except token <paramref name="index"/>, which gets dy.</summary>
    void SelectTokenBackward(Tensor dy, int index, Tensor dx);

    /// <summary>
    /// Softmax cross-entropy against target distributions (B, K) (one-hot, label-smoothed or mixed): returns the mean loss
    /// over the batch and writes dlogits (=) = (softmax − target) · <paramref name="gradScale"/> / B.
    /// </summary>
    float SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor? dlogits, float gradScale = 1f);

    /// <summary>
    /// The training loop's loss without a host round trip: like <see cref="SoftmaxCrossEntropy"/>, but adds
    /// (mean loss · <paramref name="gradScale"/>) to stats[0] and the number of rows whose arg-max equals
    /// <paramref name="labels"/> (floats, may be null) to stats[1]. stats: F32 (4) on this device, read only to log.
    /// </summary>
    void CrossEntropyStats(Tensor logits, Tensor targets, Tensor? labels, Tensor dlogits, float gradScale, Tensor stats);

    /// <summary>
    /// DeiT's distillation term (deit/losses.py, DistillationLoss) on the distillation head's logits
    /// <paramref name="student"/> (B, K) given the teacher's <paramref name="teacher"/> (B, K), both in the compute type.
    /// <see cref="DistillationKind.Hard"/>: per row CE(student, argmax teacher) (the first maximum, as torch.argmax);
    /// <see cref="DistillationKind.Soft"/>: per row τ²/K · KL(softmax(teacher/τ) ‖ softmax(student/τ)), so the batch mean
    /// is DeiT's <c>kl_div(log_softmax(s/τ), log_softmax(t/τ), reduction='sum', log_target=True) · τ² / s.numel()</c>.
    /// Like <see cref="CrossEntropyStats"/>: adds (batch-mean loss · <paramref name="gradScale"/>) to stats[0] (stats[1] is
    /// left alone) and writes dstudent (=), the gradient of that scaled mean: hard (softmax(s) − onehot)·gradScale/B, soft
    /// (softmax(s/τ) − softmax(t/τ))·gradScale·τ/(B·K). No gradient flows to the teacher. Default: on host floats
    /// (<see cref="HostOps"/>); a GPU backend keeps it on the device.
    /// </summary>
    void DistillationLoss(Tensor student, Tensor teacher, DistillationKind kind, float tau, Tensor dstudent, float gradScale, Tensor stats) =>
        HostOps.DistillationLoss(this, student, teacher, kind, tau, dstudent, gradScale, stats);

    /// <summary>torch.nn.utils.clip_grad_norm_ on the device: stats[2] = ‖grads‖₂; grads ·= max/(‖g‖+1e-6) when ‖g‖ &gt; max &gt; 0.</summary>
    void ClipGradNorm(Tensor grads, float maxNorm, Tensor stats);

    /// <summary>y = a ⊙ b elementwise (dropout and drop-path masks).</summary>
    void Multiply(Tensor a, Tensor b, Tensor y);

    /// <summary>y[r, …] = x[r, …] · rowScale[r] (F32, one per sample): drop path without a full-size mask.</summary>
    void MultiplyRows(Tensor x, Tensor rowScale, Tensor y);

    /// <summary>dst = src, converting between dtypes (fp32 master weights → bf16 compute copies).</summary>
    void Copy(Tensor src, Tensor dst);

    /// <summary>x ← x·s.</summary>
    void Scale(Tensor x, float s);


    /// <summary>Σ x², in double (global-norm clipping).</summary>
    double SumSquares(Tensor x);

    /// <summary>Backward of <see cref="IBackend.EmbedTokens"/>: dpatches (=); each dprefix +=, summed over the batch; dpos += Σbatch dx.</summary>
    void EmbedTokensBackward(Tensor dx, Tensor dpatches, IReadOnlyList<Tensor> dprefix, Tensor dpos) =>
        HostOps.EmbedTokensBackward(this, dx, dpatches, dprefix, dpos);

    /// <summary>Backward of <see cref="IBackend.MulChannels"/>: dx (=) = dy ⊙ γ; dγ += Σrows dy ⊙ x.</summary>
    void MulChannelsBackward(Tensor dy, Tensor x, Tensor gamma, Tensor dx, Tensor dgamma) =>
        HostOps.MulChannelsBackward(this, dy, x, gamma, dx, dgamma);

    /// <summary>Backward of <see cref="IBackend.MaxTokens"/>: dx (=) holds dy at each feature's arg-max token, zero elsewhere.</summary>
    void MaxTokensBackward(Tensor dy, Tensor x, int start, Tensor dx) => HostOps.MaxTokensBackward(this, dy, x, start, dx);

    /// <summary>Backward of <see cref="IBackend.QkNorm"/> from the qkv it normalised (<paramref name="qkv"/>, before the norm):
    /// dqkv is turned in place into the gradient of that input (v's part passes through); dγ, dβ of q and k +=.</summary>
    void QkNormBackward(Tensor dqkv, Tensor qkv, int heads, Tensor qGamma, Tensor kGamma, float eps,
        Tensor dqGamma, Tensor dqBeta, Tensor dkGamma, Tensor dkBeta) =>
        HostOps.QkNormBackward(this, dqkv, qkv, heads, qGamma, kGamma, eps, dqGamma, dqBeta, dkGamma, dkBeta);

    /// <summary>Backward of <see cref="IBackend.CrossAttention"/> (probabilities recomputed): dq (=, summed over the batch
    /// when one query set serves every sample) and dkv (=).</summary>
    void CrossAttentionBackward(Tensor dy, Tensor q, Tensor kv, Tensor dq, Tensor dkv, int heads, float scale) =>
        HostOps.CrossAttentionBackward(this, dy, q, kv, dq, dkv, heads, scale);

    /// <summary>Backward of <see cref="IBackend.MaxPool3x3s2"/> from its input x (B, H·W, C): dx (=) holds each window's dy
    /// at the window's first maximum (row-major scan order, as PyTorch picks it), summed where windows overlap.</summary>
    void MaxPool3x3s2Backward(Tensor dy, Tensor x, Tensor dx, int height, int width) =>
        HostOps.MaxPool3x3s2Backward(this, dy, x, dx, height, width);

    /// <summary>Backward of <see cref="IBackend.Im2Col3x3"/> for a channels-last input: dx (B, H·W, C) (=) = the sum of every
    /// column entry that copied the pixel (col2im, a gather: each pixel sums its nine entries in a fixed order).</summary>
    void Im2Col3x3Backward(Tensor dcols, Tensor dx, int height, int width) => HostOps.Im2Col3x3Backward(this, dcols, dx, height, width);

    /// <summary>Backward of <see cref="IBackend.SeqPool"/> from its input x (B, N, D) and saved weights (B, N) F32, for
    /// the pooled gradient dy (B, D): dx (=) = wₙ·dy; dscores (=, B·N elements) = wₙ·(x ₙ·dy − Σₘ wₘ·xₘ·dy), the scores'
    /// gradient (the score Linear's backward adds its share into dx).</summary>
    void SeqPoolBackward(Tensor dy, Tensor x, Tensor weights, Tensor dx, Tensor dscores) =>
        HostOps.SeqPoolBackward(this, dy, x, weights, dx, dscores);

    /// <summary>In place on a contiguous slice of parameters with its gradient and moment slices.</summary>
    void AdamWStep(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWArgs args);

    /// <summary>
    /// AdamW over a whole parameter buffer split into contiguous runs, each with or without weight decay (timm's groups):
    /// the numbers of <see cref="AdamWStep"/> per run with <paramref name="args"/>' weight decay where a run decays and
    /// none where it does not. A backend may do it in one sweep; by default it steps run by run.
    /// </summary>
    void AdamWStepRuns(Tensor param, Tensor grad, Tensor m, Tensor v, IReadOnlyList<(long Offset, int Length, bool Decay)> runs, AdamWArgs args)
    {
        foreach (var (off, len, decay) in runs)
            AdamWStep(param.View([len], off), grad.View([len], off), m.View([len], off), v.View([len], off),
                args with { WeightDecay = decay ? args.WeightDecay : 0f });
    }

    void SgdStep(Tensor param, Tensor grad, Tensor momentum, SgdArgs args);

    /// <summary>ema ← decay·ema + (1−decay)·param.</summary>
    void EmaUpdate(Tensor ema, Tensor param, float decay);
}
