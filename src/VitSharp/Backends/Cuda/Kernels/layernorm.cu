// LayerNorm over the last dimension, fp32 statistics whatever the storage type.
// layernorm_warp_c<C>_*: one warp per row, the row held in registers (8 elements per lane per chunk, C chunks at most:
// widths up to C·256; one instance per C so narrow rows keep few registers and many warps in flight),
// so the row is read once and written once: the op is memory-bound and this is its floor. Mean first, then the
// variance of (x − mean) from registers: the two-pass form, as exact as the CPU reference.
// layernorm_block_*: any width or alignment, one block per row, re-reading the row (from cache).

template <typename T, int LN_MAXC>
__device__ void layernorm_warp_impl(const T* x, const T* gamma, const T* beta, T* y, int rows, int d, float eps)
{
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T* xr = x + (long)row * d;
    T* yr = y + (long)row * d;
    int chunks = d >> 3;
    float v[LN_MAXC][8];
    float s = 0.f;
#pragma unroll
    for (int c = 0; c < LN_MAXC; c++)
    {
        int idx = (c * 32 + lane);
        if (idx < chunks)
        {
            load8(xr + idx * 8, v[c]);
#pragma unroll
            for (int k = 0; k < 8; k++) s += v[c][k];
        }
    }
    float mean = warp_sum(s) / d;
    float q = 0.f;
#pragma unroll
    for (int c = 0; c < LN_MAXC; c++)
        if (c * 32 + lane < chunks)
#pragma unroll
            for (int k = 0; k < 8; k++) { float t = v[c][k] - mean; q += t * t; }
    float rstd = rsqrtf(warp_sum(q) / d + eps);
#pragma unroll
    for (int c = 0; c < LN_MAXC; c++)
    {
        int idx = (c * 32 + lane);
        if (idx < chunks)
        {
            float g[8], b[8];
            load8(gamma + idx * 8, g);
            load8(beta + idx * 8, b);
#pragma unroll
            for (int k = 0; k < 8; k++) v[c][k] = (v[c][k] - mean) * rstd * g[k] + b[k];
            store8(yr + idx * 8, v[c]);
        }
    }
}

template <typename T>
__device__ void layernorm_block_impl(const T* x, const T* gamma, const T* beta, T* y, int d, float eps)
{
    __shared__ float scratch[32];
    const T* xr = x + (long)blockIdx.x * d;
    T* yr = y + (long)blockIdx.x * d;
    float s = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) s += to_f(xr[i]);
    float mean = block_reduce(s, scratch, false) / d;
    float q = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) { float t = to_f(xr[i]) - mean; q += t * t; }
    float rstd = rsqrtf(block_reduce(q, scratch, false) / d + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        yr[i] = from_f<T>((to_f(xr[i]) - mean) * rstd * to_f(gamma[i]) + to_f(beta[i]));
}

#define VS_LAYERNORM_WARP(T, S, C) \
extern "C" __global__ void layernorm_warp_c##C##_##S(const T* x, const T* g, const T* b, T* y, int rows, int d, float eps) \
    { layernorm_warp_impl<T, C>(x, g, b, y, rows, d, eps); }
#define VS_LAYERNORM(T, S) \
VS_LAYERNORM_WARP(T, S, 1) VS_LAYERNORM_WARP(T, S, 2) VS_LAYERNORM_WARP(T, S, 3) VS_LAYERNORM_WARP(T, S, 4) VS_LAYERNORM_WARP(T, S, 6) \
extern "C" __global__ void layernorm_block_##S(const T* x, const T* g, const T* b, T* y, int d, float eps) \
    { layernorm_block_impl(x, g, b, y, d, eps); }

VS_LAYERNORM(float, f32)
VS_LAYERNORM(bf16, bf16)
