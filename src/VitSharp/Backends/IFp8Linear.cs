using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>
/// Optional backend capability: run the <see cref="IBackend.Linear"/> products of chosen weights in FP8 E4M3 — the weight
/// and the activation each with one per-tensor scale (<see cref="Fp8"/>), the activation's calibrated ahead of time,
/// fp32 accumulation, output, bias, GELU and the residual add in the compute type. Keyed by the weight tensor's memory
/// like <see cref="IInt8Linear"/>, so layers keep calling <see cref="IBackend.Linear"/>; <c>VisionModel.UseFp8</c> opts
/// weights in. Inference only (CUDA on GPUs with FP8 tensor cores: compute capability 8.9 and later).
/// </summary>
public interface IFp8Linear
{
    /// <summary>Whether this device runs FP8 products; <paramref name="reason"/> says why not.</summary>
    bool SupportsFp8(out string reason);

    /// <summary>Later products against this exact weight memory (out, in) run on its E4M3 <paramref name="codes"/>
    /// (row-major, out × in) dequantised by <paramref name="weightScale"/>, the input quantised as x / <paramref name="inputScale"/>.
    /// Returns false (and keeps the floating-point product) for shapes FP8 products cannot take.</summary>
    bool UseFp8(Tensor weight, byte[] codes, float weightScale, float inputScale);

    /// <summary>Back to the floating-point weight; frees the FP8 copy.</summary>
    void ReleaseFp8(Tensor weight);
}
