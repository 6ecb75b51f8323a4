// Shared by every kernel file (KernelCache puts this text in front of each). No CUDA headers: NVRTC compiles these
// without an include path, so bf16 is our own 16-bit type (the upper half of an IEEE float) converted with bit
// operations, and tensor-core instructions are written as inline PTX.
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#define VS_INF __int_as_float(0x7f800000)

struct bf16 { unsigned short bits; };

__device__ __forceinline__ float bf16_to_f(unsigned short h) { return __uint_as_float(((unsigned)h) << 16); }

// Round to nearest even, NaN stays NaN: the same rule as BFloat16Convert on the host.
__device__ __forceinline__ unsigned short f_to_bf16(float f)
{
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

// Two floats to a bf16 pair (lo in the low half), round to nearest even in one instruction.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi)
{
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16 x) { return bf16_to_f(x.bits); }
template <typename T> __device__ __forceinline__ T from_f(float f);
template <> __device__ __forceinline__ float from_f<float>(float f) { return f; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float f) { bf16 r; r.bits = f_to_bf16(f); return r; }

// Eight consecutive elements (16-byte aligned) as floats, and back.
__device__ __forceinline__ void load8(const float* p, float* v)
{
    float4 a = *(const float4*)p, b = *(const float4*)(p + 4);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
__device__ __forceinline__ void load8(const bf16* p, float* v)
{
    uint4 a = *(const uint4*)p;
    uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int i = 0; i < 4; i++) { v[2 * i] = __uint_as_float(w[i] << 16); v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u); }
}
__device__ __forceinline__ void store8(float* p, const float* v)
{
    *(float4*)p = make_float4(v[0], v[1], v[2], v[3]);
    *(float4*)(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(bf16* p, const float* v)
{
    *(uint4*)p = make_uint4(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]), pack_bf16x2(v[4], v[5]), pack_bf16x2(v[6], v[7]));
}

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum (or max) over a block of up to 1024 threads; every thread gets the result. scratch: 32 floats of shared memory.
__device__ __forceinline__ float block_reduce(float v, float* scratch, bool is_max)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = is_max ? warp_max(v) : warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float r = lane < warps ? scratch[lane] : (is_max ? -VS_INF : 0.f);
    return is_max ? warp_max(r) : warp_sum(r);
}

// Pointwise functions, codes as in the Activation enum: 0 none, 1 GELU (erf, PyTorch's default), 2 GELU (tanh), 3 tanh.
__device__ __forceinline__ float activate(float x, int act)
{
    switch (act)
    {
        case 1: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
        case 2: return 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
        case 3: return tanhf(x);
        case 4: return x / (1.f + __expf(-1.702f * x));
        case 5: return fmaxf(x, 0.f);
        case 6: return x / (1.f + __expf(-x));
        default: return x;
    }
}
