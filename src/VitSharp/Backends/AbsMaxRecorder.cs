using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>
/// Calibration for FP8 (<see cref="IFp8Linear"/>): passes every op through to <paramref name="inner"/> and, for each
/// <see cref="IBackend.Linear"/> against one of the named weights, records the largest |x| of its input (read back to the
/// host: calibration runs a few batches, not a service). <c>VisionModel.CalibrateInputs</c> runs the model's own
/// forward on it.
/// </summary>
internal sealed class AbsMaxRecorder(IBackend inner, IReadOnlyDictionary<nint, string> weights) : IBackend
{
    private readonly Dictionary<string, float> _absMax = new(StringComparer.Ordinal);

    /// <summary>The largest |input| seen per weight name (weights never multiplied are absent).</summary>
    public IReadOnlyDictionary<string, float> AbsMax => _absMax;

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false)
    {
        if (weights.TryGetValue(w.Pointer, out var name))
        {
            var host = new float[x.Length];
            inner.CopyToHost(x, host);
            float m = _absMax.GetValueOrDefault(name);
            foreach (var v in host) m = MathF.Max(m, MathF.Abs(v));
            _absMax[name] = m;
        }
        inner.Linear(x, w, bias, y, act, accumulate);
    }

    public Device Device => inner.Device;
    public DType ComputeType => inner.ComputeType;
    public Tensor Allocate(int[] shape, DType dtype) => inner.Allocate(shape, dtype);
    public void CopyFromHost(ReadOnlySpan<float> src, Tensor dst) => inner.CopyFromHost(src, dst);
    public void CopyToHost(Tensor src, Span<float> dst) => inner.CopyToHost(src, dst);
    public void Synchronize() => inner.Synchronize();
    public void Zero(Tensor x) => inner.Zero(x);
    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y) => inner.LayerNorm(x, gamma, beta, eps, y);
    public void Add(Tensor a, Tensor b, Tensor y) => inner.Add(a, b, y);
    public void Apply(Activation act, Tensor x, Tensor y) => inner.Apply(act, x, y);
    public void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null) => inner.Attention(qkv, y, heads, scale, probs);
    public void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch) => inner.PatchEmbed(images, w, bias, y, patch);
    public void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x) => inner.Embed(patches, cls, pos, x);
    public void MeanTokens(Tensor x, int start, Tensor y) => inner.MeanTokens(x, start, y);
    public void SelectToken(Tensor x, int index, Tensor y) => inner.SelectToken(x, index, y);
    public void Transpose12(Tensor x, Tensor y) => inner.Transpose12(x, y);
    public void EmbedTokens(Tensor patches, IReadOnlyList<Tensor> prefix, Tensor pos, Tensor x) => inner.EmbedTokens(patches, prefix, pos, x);
    public void MulChannels(Tensor x, Tensor gamma, Tensor y) => inner.MulChannels(x, gamma, y);
    public void ScaleInto(Tensor x, float s, Tensor y) => inner.ScaleInto(x, s, y);
    public void MaxTokens(Tensor x, int start, Tensor y) => inner.MaxTokens(x, start, y);
    public void QkNorm(Tensor qkv, int heads, Tensor qGamma, Tensor qBeta, Tensor kGamma, Tensor kBeta, float eps) =>
        inner.QkNorm(qkv, heads, qGamma, qBeta, kGamma, kBeta, eps);
    public void UnfoldPatches(Tensor images, Tensor y, int patch) => inner.UnfoldPatches(images, y, patch);
    public void CrossAttention(Tensor q, Tensor kv, Tensor y, int heads, float scale) => inner.CrossAttention(q, kv, y, heads, scale);
    public void CausalAttention(Tensor qkv, Tensor y, int heads, float scale) => inner.CausalAttention(qkv, y, heads, scale);
    public void Dispose() { }
}
