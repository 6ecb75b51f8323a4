using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// Wraps a backend and hands every compute op, with a label naming the op and its shape, to <paramref name="time"/>,
/// which runs it between timing marks (device events for `vit bench --profile`). Allocation, copies and the family ops
/// pass through (<see cref="ForwardingBackend"/>).
/// </summary>
public sealed class TimedBackend(IBackend inner, Action<string, Action> time) : ForwardingBackend(inner)
{
    public override void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false) =>
        time($"Linear {w.Dim(1)}->{w.Dim(0)}{(act == Activation.None ? "" : " " + act)}{(accumulate ? " +=" : "")}",
            () => Inner.Linear(x, w, bias, y, act, accumulate));

    public override void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y) =>
        time($"LayerNorm {x.Dim(-1)}", () => Inner.LayerNorm(x, gamma, beta, eps, y));

    public override void Add(Tensor a, Tensor b, Tensor y) => time("Add", () => Inner.Add(a, b, y));
    public override void Apply(Activation act, Tensor x, Tensor y) => time($"Apply {act}", () => Inner.Apply(act, x, y));

    public override void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null) =>
        time($"Attention hd{qkv.Dim(2) / 3 / heads}{(probs is null ? "" : " +probs")}", () => Inner.Attention(qkv, y, heads, scale, probs));

    public override void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch) =>
        time("PatchEmbed", () => Inner.PatchEmbed(images, w, bias, y, patch));

    public override void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x) => time("Embed", () => Inner.Embed(patches, cls, pos, x));
    public override void MeanTokens(Tensor x, int start, Tensor y) => time("MeanTokens", () => Inner.MeanTokens(x, start, y));
    public override void SelectToken(Tensor x, int index, Tensor y) => time("SelectToken", () => Inner.SelectToken(x, index, y));
    public override void Transpose12(Tensor x, Tensor y) => time("Transpose12", () => Inner.Transpose12(x, y));

    public override void Conv3x3(Tensor x, Tensor w, Tensor cols, Tensor y, int height, int width, bool channelsFirst, Activation act) =>
        time($"Conv3x3 {w.Dim(1)}->{w.Dim(0)} {height}x{width}", () => Inner.Conv3x3(x, w, cols, y, height, width, channelsFirst, act));
    public override void MaxPool3x3s2(Tensor x, Tensor y, int height, int width) =>
        time($"MaxPool3x3s2 {height}x{width}", () => Inner.MaxPool3x3s2(x, y, height, width));
    public override void SeqPool(Tensor x, Tensor scores, Tensor weights, Tensor y) => time("SeqPool", () => Inner.SeqPool(x, scores, weights, y));
}
