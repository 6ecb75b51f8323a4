// FP8 E4M3 inference (IFp8Linear): the activation of each FP8 product quantised with its per-tensor scale before
// cuBLASLt multiplies E4M3 by E4M3. Its own file, so that GPUs without FP8 (compute capability below 8.9) never
// compile the cvt.*.e4m3x2 instruction.

// Two floats to an E4M3 pair (lo in the low byte): round to nearest even, saturate to ±448, NaN stays NaN. The same
// rule as Fp8.FromFloat on the host.
__device__ __forceinline__ unsigned short pack_e4m3x2(float lo, float hi)
{
    unsigned short r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
    return r;
}

// q[i] = e4m3(x[i] · inv_scale), eight elements a thread (x 16-byte aligned, q 8-byte aligned).
extern "C" __global__ void fp8_quantize_vec8_bf16(const bf16* __restrict__ x, uint2* __restrict__ q, float inv_scale, long n8)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n8; i += (long)gridDim.x * blockDim.x)
    {
        float v[8];
        load8(x + 8 * i, v);
        uint32_t a = pack_e4m3x2(v[0] * inv_scale, v[1] * inv_scale) | ((uint32_t)pack_e4m3x2(v[2] * inv_scale, v[3] * inv_scale) << 16);
        uint32_t b = pack_e4m3x2(v[4] * inv_scale, v[5] * inv_scale) | ((uint32_t)pack_e4m3x2(v[6] * inv_scale, v[7] * inv_scale) << 16);
        q[i] = make_uint2(a, b);
    }
}

// The same, one element a thread, for any length and alignment.
extern "C" __global__ void fp8_quantize_bf16(const bf16* __restrict__ x, unsigned char* __restrict__ q, float inv_scale, long n)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        q[i] = (unsigned char)(pack_e4m3x2(to_f(x[i]) * inv_scale, 0.f) & 0xff);
}
