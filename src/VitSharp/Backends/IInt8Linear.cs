using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>
/// Optional backend capability: run the <see cref="IBackend.Linear"/> products of chosen weights in int8 (weights
/// quantised per output channel, activations per token at run time, int32 accumulation). Like
/// <see cref="IWeightPrepacking"/> it is keyed by the weight tensor's memory, so layers keep calling
/// <see cref="IBackend.Linear"/> unchanged; <c>VisionModel.UseInt8</c> opts weights in. Inference only.
/// </summary>
public interface IInt8Linear
{
    /// <summary>Later products against this exact weight memory (out, in) run on <paramref name="quantized"/>, which
    /// the backend then owns (disposed on <see cref="ReleaseInt8"/>).</summary>
    void UseInt8(Tensor weight, Int8Matrix quantized);

    /// <summary>Back to the floating-point weight; frees the int8 copy.</summary>
    void ReleaseInt8(Tensor weight);

    /// <summary>The int8 kernel that runs (e.g. "avx-vnni", "scalar"), for reports.</summary>
    string Int8Kernel { get; }
}
