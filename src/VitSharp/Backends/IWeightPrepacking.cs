using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>
/// Optional backend capability: keep weights in the layout the matrix product wants, so inference skips re-packing
/// them on every call. Opt-in per weight, because the backend cannot see in-place updates: a prepacked weight must not
/// change until it is released (training never prepacks; <c>VisionModel.PrepareForInference</c> does).
/// </summary>
public interface IWeightPrepacking
{
    /// <summary>Packs a Linear-style weight (out, in…): later products against this exact tensor memory use the packed copy.</summary>
    void Prepack(Tensor weight);

    /// <summary>Drops the packed copy (call before the weight changes or its memory is freed).</summary>
    void Release(Tensor weight);
}
