using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Tensors;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>The CPU backend with its conv-tokenizer and SeqPool ops replaced by IBackend's and ITrainingBackend's host
/// defaults (HostOps), so tests can check those defaults against the CPU kernels; every other op is the CPU's.</summary>
internal sealed class HostDefaultsBackend : ForwardingBackend, ITrainingBackend
{
    private readonly CpuBackend _cpu = CpuBackend.Instance;
    public HostDefaultsBackend() : base(CpuBackend.Instance) { }
    public override void Im2Col3x3(Tensor x, Tensor cols, int height, int width, bool channelsFirst) =>
        HostOps.Im2Col3x3(this, x, cols, height, width, channelsFirst);
    public override void MaxPool3x3s2(Tensor x, Tensor y, int height, int width) => HostOps.MaxPool3x3s2(this, x, y, height, width);
    public void MaxPool3x3s2Backward(Tensor dy, Tensor x, Tensor dx, int height, int width) => HostOps.MaxPool3x3s2Backward(this, dy, x, dx, height, width);
    public void Im2Col3x3Backward(Tensor dcols, Tensor dx, int height, int width) => HostOps.Im2Col3x3Backward(this, dcols, dx, height, width);
    public override void SeqPool(Tensor x, Tensor scores, Tensor weights, Tensor y) => HostOps.SeqPool(this, x, scores, weights, y);
    public void SeqPoolBackward(Tensor dy, Tensor x, Tensor weights, Tensor dx, Tensor dscores) => HostOps.SeqPoolBackward(this, dy, x, weights, dx, dscores);
    public void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, bool accumulateDx = false) => _cpu.LinearBackward(dy, x, w, dx, dw, db, accumulateDx);
    public void LayerNormTrain(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y, Tensor mean, Tensor rstd) => _cpu.LayerNormTrain(x, gamma, beta, eps, y, mean, rstd);
    public void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dx, Tensor dgamma, Tensor dbeta, bool accumulateDx = false) =>
        _cpu.LayerNormBackward(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, accumulateDx);
    public void ActivationBackward(Activation act, Tensor dy, Tensor pre, Tensor dx) => _cpu.ActivationBackward(act, dy, pre, dx);
    public void AttentionBackward(Tensor dy, Tensor qkv, Tensor probs, Tensor dqkv, int heads, float scale) => _cpu.AttentionBackward(dy, qkv, probs, dqkv, heads, scale);
    public void PatchEmbedBackward(Tensor dy, Tensor images, Tensor dw, Tensor db, int patch) => _cpu.PatchEmbedBackward(dy, images, dw, db, patch);
    public void EmbedBackward(Tensor dx, Tensor dpatches, Tensor? dcls, Tensor dpos) => _cpu.EmbedBackward(dx, dpatches, dcls, dpos);
    public void MeanTokensBackward(Tensor dy, int start, Tensor dx) => _cpu.MeanTokensBackward(dy, start, dx);
    public void SelectTokenBackward(Tensor dy, int index, Tensor dx) => _cpu.SelectTokenBackward(dy, index, dx);
    public float SoftmaxCrossEntropy(Tensor logits, Tensor targets, Tensor? dlogits, float gradScale = 1) => _cpu.SoftmaxCrossEntropy(logits, targets, dlogits, gradScale);
    public void CrossEntropyStats(Tensor logits, Tensor targets, Tensor? labels, Tensor dlogits, float gradScale, Tensor stats) =>
        _cpu.CrossEntropyStats(logits, targets, labels, dlogits, gradScale, stats);
    public void ClipGradNorm(Tensor grads, float maxNorm, Tensor stats) => _cpu.ClipGradNorm(grads, maxNorm, stats);
    public void Multiply(Tensor a, Tensor b, Tensor y) => _cpu.Multiply(a, b, y);
    public void MultiplyRows(Tensor x, Tensor rowScale, Tensor y) => _cpu.MultiplyRows(x, rowScale, y);
    public void Copy(Tensor src, Tensor dst) => _cpu.Copy(src, dst);
    public void Scale(Tensor x, float s) => _cpu.Scale(x, s);
    public double SumSquares(Tensor x) => _cpu.SumSquares(x);
    public void AdamWStep(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWArgs args) => _cpu.AdamWStep(param, grad, m, v, args);
    public void SgdStep(Tensor param, Tensor grad, Tensor momentum, SgdArgs args) => _cpu.SgdStep(param, grad, momentum, args);
    public void EmaUpdate(Tensor ema, Tensor param, float decay) => _cpu.EmaUpdate(ema, param, decay);
}
