using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// Wraps a backend and hands every compute op, with a label naming the op and its shape, to <paramref name="time"/>,
/// which runs it between timing marks (device events for `vit bench --profile`). Allocation and copies pass through.
/// </summary>
public sealed class TimedBackend(IBackend inner, Action<string, Action> time) : IBackend
{
    public Device Device => inner.Device;
    public DType ComputeType => inner.ComputeType;
    public Tensor Allocate(int[] shape, DType dtype) => inner.Allocate(shape, dtype);
    public void CopyFromHost(ReadOnlySpan<float> src, Tensor dst) => inner.CopyFromHost(src, dst);
    public void CopyToHost(Tensor src, Span<float> dst) => inner.CopyToHost(src, dst);
    public void Synchronize() => inner.Synchronize();
    public void Zero(Tensor x) => inner.Zero(x);

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false) =>
        time($"Linear {w.Dim(1)}->{w.Dim(0)}{(act == Activation.None ? "" : " " + act)}{(accumulate ? " +=" : "")}",
            () => inner.Linear(x, w, bias, y, act, accumulate));

    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y) =>
        time($"LayerNorm {x.Dim(-1)}", () => inner.LayerNorm(x, gamma, beta, eps, y));

    public void Add(Tensor a, Tensor b, Tensor y) => time("Add", () => inner.Add(a, b, y));
    public void Apply(Activation act, Tensor x, Tensor y) => time($"Apply {act}", () => inner.Apply(act, x, y));

    public void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null) =>
        time($"Attention hd{qkv.Dim(2) / 3 / heads}{(probs is null ? "" : " +probs")}", () => inner.Attention(qkv, y, heads, scale, probs));

    public void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch) =>
        time("PatchEmbed", () => inner.PatchEmbed(images, w, bias, y, patch));

    public void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x) => time("Embed", () => inner.Embed(patches, cls, pos, x));
    public void MeanTokens(Tensor x, int start, Tensor y) => time("MeanTokens", () => inner.MeanTokens(x, start, y));
    public void SelectToken(Tensor x, int index, Tensor y) => time("SelectToken", () => inner.SelectToken(x, index, y));
    public void Transpose12(Tensor x, Tensor y) => time("Transpose12", () => inner.Transpose12(x, y));

    public void Dispose() { }
}
