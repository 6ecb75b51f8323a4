using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>
/// A backend that hands every op to <see cref="Inner"/>: the base of the decorators (TimedBackend's per-op timing, the
/// FP8 calibration's <see cref="AbsMaxRecorder"/>), which override the ops they watch. Disposing it leaves the inner
/// backend alone.
/// </summary>
public abstract class ForwardingBackend(IBackend inner) : IBackend
{
    protected IBackend Inner { get; } = inner;

    public virtual Device Device => Inner.Device;
    public virtual DType ComputeType => Inner.ComputeType;
    public virtual Tensor Allocate(int[] shape, DType dtype) => Inner.Allocate(shape, dtype);
    public virtual void CopyFromHost(ReadOnlySpan<float> src, Tensor dst) => Inner.CopyFromHost(src, dst);
    public virtual void CopyToHost(Tensor src, Span<float> dst) => Inner.CopyToHost(src, dst);
    public virtual void Synchronize() => Inner.Synchronize();
    public virtual void Zero(Tensor x) => Inner.Zero(x);
    public virtual void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false) =>
        Inner.Linear(x, w, bias, y, act, accumulate);
    public virtual void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y) => Inner.LayerNorm(x, gamma, beta, eps, y);
    public virtual void Add(Tensor a, Tensor b, Tensor y) => Inner.Add(a, b, y);
    public virtual void Apply(Activation act, Tensor x, Tensor y) => Inner.Apply(act, x, y);
    public virtual void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null) => Inner.Attention(qkv, y, heads, scale, probs);
    public virtual void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch) => Inner.PatchEmbed(images, w, bias, y, patch);
    public virtual void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x) => Inner.Embed(patches, cls, pos, x);
    public virtual void MeanTokens(Tensor x, int start, Tensor y) => Inner.MeanTokens(x, start, y);
    public virtual void SelectToken(Tensor x, int index, Tensor y) => Inner.SelectToken(x, index, y);
    public virtual void Transpose12(Tensor x, Tensor y) => Inner.Transpose12(x, y);
    public virtual void EmbedTokens(Tensor patches, IReadOnlyList<Tensor> prefix, Tensor pos, Tensor x) => Inner.EmbedTokens(patches, prefix, pos, x);
    public virtual void MulChannels(Tensor x, Tensor gamma, Tensor y) => Inner.MulChannels(x, gamma, y);
    public virtual void ScaleInto(Tensor x, float s, Tensor y) => Inner.ScaleInto(x, s, y);
    public virtual void MaxTokens(Tensor x, int start, Tensor y) => Inner.MaxTokens(x, start, y);
    public virtual void QkNorm(Tensor qkv, int heads, Tensor qGamma, Tensor qBeta, Tensor kGamma, Tensor kBeta, float eps) =>
        Inner.QkNorm(qkv, heads, qGamma, qBeta, kGamma, kBeta, eps);
    public virtual void UnfoldPatches(Tensor images, Tensor y, int patch) => Inner.UnfoldPatches(images, y, patch);
    public virtual void CrossAttention(Tensor q, Tensor kv, Tensor y, int heads, float scale) => Inner.CrossAttention(q, kv, y, heads, scale);
    public virtual void CausalAttention(Tensor qkv, Tensor y, int heads, float scale) => Inner.CausalAttention(qkv, y, heads, scale);
    public virtual void Im2Col3x3(Tensor x, Tensor cols, int height, int width, bool channelsFirst) => Inner.Im2Col3x3(x, cols, height, width, channelsFirst);
    public virtual void Conv3x3(Tensor x, Tensor w, Tensor cols, Tensor y, int height, int width, bool channelsFirst, Activation act) =>
        Inner.Conv3x3(x, w, cols, y, height, width, channelsFirst, act);
    public virtual void MaxPool3x3s2(Tensor x, Tensor y, int height, int width) => Inner.MaxPool3x3s2(x, y, height, width);
    public virtual void SeqPool(Tensor x, Tensor scores, Tensor weights, Tensor y) => Inner.SeqPool(x, scores, weights, y);
    public virtual void Dispose() => GC.SuppressFinalize(this);
}
