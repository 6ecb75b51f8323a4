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

    /// <summary>Packs <paramref name="values"/> as this weight's copy. A backend may leave the weight's own memory
    /// unwritten (the CPU does: the packed copy is then the only one); this default writes the values in and packs them.</summary>
    void Prepack(Tensor weight, ReadOnlySpan<float> values)
    {
        if (weight.Device.IsCpu && weight.DType == DType.F32) values.CopyTo(weight.Span);
        else throw new NotSupportedException($"Prepack from values needs a host F32 weight, not {weight}");
        Prepack(weight);
    }

    /// <summary>Drops the packed copy (call before the weight changes or its memory is freed).</summary>
    void Release(Tensor weight);
}
