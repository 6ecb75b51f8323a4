// Pointwise and data-movement kernels: residual add, activations, token embedding, pooling, Mixer's transpose and
// the patch unfold. All memory-bound: 16-byte accesses where the sizes allow (the *_vec8 variants, used when the
// element count is a multiple of 8 and the pointers 16-byte aligned), fp32 arithmetic.

template <typename T>
__device__ void add_impl(const T* a, const T* b, T* y, long n)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        y[i] = from_f<T>(to_f(a[i]) + to_f(b[i]));
}
template <typename T>
__device__ void add_vec8_impl(const T* a, const T* b, T* y, long n8)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n8; i += (long)gridDim.x * blockDim.x)
    {
        float va[8], vb[8];
        load8(a + 8 * i, va);
        load8(b + 8 * i, vb);
#pragma unroll
        for (int k = 0; k < 8; k++) va[k] += vb[k];
        store8(y + 8 * i, va);
    }
}

template <typename T>
__device__ void activation_impl(const T* x, T* y, long n, int act)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        y[i] = from_f<T>(activate(to_f(x[i]), act));
}
// Two 16-byte vectors per thread per step, both loaded before either is computed: twice the bytes in flight
// (the pass is memory-bound, and with exact erf partly arithmetic-bound). Safe in place: each element is read before
// its own write, and no element is read after another thread wrote it.
template <typename T>
__device__ void activation_vec8_impl(const T* x, T* y, long n8, int act)
{
    long stride = (long)gridDim.x * blockDim.x;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n8; i += 2 * stride)
    {
        float v[8], w[8];
        bool second = i + stride < n8;
        load8(x + 8 * i, v);
        if (second) load8(x + 8 * (i + stride), w);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = activate(v[k], act);
        store8(y + 8 * i, v);
        if (second)
        {
#pragma unroll
            for (int k = 0; k < 8; k++) w[k] = activate(w[k], act);
            store8(y + 8 * (i + stride), w);
        }
    }
}

// x (B, T, D) = [prefix ; patches] + pos: prefix holds the `prefix` tokens (class, distillation, registers) side by
// side (prefix·D values; the class token alone for Embed), may be null when prefix is 0 (T = Np). Grid: (chunks of T·D, B), so the index
// arithmetic stays 32-bit (64-bit division is a long subroutine on the GPU).
template <typename T>
__device__ void embed_impl(const T* patches, const T* cls, const T* pos, T* x, int np, int d, int prefix)
{
    int t = np + prefix, b = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < t * d; i += gridDim.x * blockDim.x)
    {
        int tok = i / d, c = i - tok * d;
        float v = tok < prefix ? to_f(cls[i]) : to_f(patches[((long)b * np + tok - prefix) * d + c]);
        x[(long)b * t * d + i] = from_f<T>(v + to_f(pos[i]));
    }
}

// y (B, D) = mean over tokens [start, T) of x (B, T, D); one thread per (b, channel), coalesced over channels.
template <typename T>
__device__ void mean_tokens_impl(const T* x, T* y, int batch, int t, int d, int start)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= (long)batch * d) return;
    int b = (int)(i / d), c = (int)(i % d);
    float s = 0.f;
    for (int k = start; k < t; k++) s += to_f(x[((long)b * t + k) * d + c]);
    y[i] = from_f<T>(s / (float)(t - start));
}

template <typename T>
__device__ void select_token_impl(const T* x, T* y, int batch, int t, int d, int index)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= (long)batch * d) return;
    int b = (int)(i / d), c = (int)(i % d);
    y[i] = x[((long)b * t + index) * d + c];
}

// y (B, C, A) = x (B, A, C): 32×32 tiles through shared memory so reads and writes are both coalesced.
template <typename T>
__device__ void transpose12_impl(const T* x, T* y, int a, int c)
{
    __shared__ T tile[32][33];
    long b = blockIdx.z;
    const T* xs = x + b * a * c;
    T* ys = y + b * a * c;
    int i0 = blockIdx.y * 32, j0 = blockIdx.x * 32;
    for (int k = threadIdx.y; k < 32; k += blockDim.y)
    {
        int i = i0 + k, j = j0 + threadIdx.x;
        if (i < a && j < c) tile[k][threadIdx.x] = xs[(long)i * c + j];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < 32; k += blockDim.y)
    {
        int j = j0 + k, i = i0 + threadIdx.x;
        if (i < a && j < c) ys[(long)j * a + i] = tile[threadIdx.x][k];
    }
}

// Unfold images (B, C, H, W) into rows (B·Np, C·P·P) in (C, P, P) order: the conv weight's flattened input order.
// One thread per (patch, channel, dy) copies P contiguous pixels, in 16-byte pieces when sizes and addresses allow.
// Grid: (chunks of Np·C·P, B): 32-bit index arithmetic within one image.
template <typename T>
__device__ void im2col_impl(const T* img, T* cols, int ch, int h, int w, int patch, int vec)
{
    int gw = w / patch, np = (h / patch) * gw, b = blockIdx.y;
    const T* im = img + (long)b * ch * h * w;
    T* out = cols + (long)b * np * ch * patch * patch;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < np * ch * patch; i += gridDim.x * blockDim.x)
    {
        int dy = i % patch, r = i / patch, c = r % ch, p = r / ch;
        const T* src = im + ((long)c * h + (p / gw) * patch + dy) * w + (p % gw) * patch;
        T* dst = out + (long)i * patch; // = p·C·P·P + (c·P + dy)·P
        if (vec)
            for (int k = 0; k < patch; k += 16 / sizeof(T)) *(uint4*)(dst + k) = *(const uint4*)(src + k);
        else
            for (int k = 0; k < patch; k++) dst[k] = src[k];
    }
}

#define VS_ELEMENTWISE(T, S) \
extern "C" __global__ void add_##S(const T* a, const T* b, T* y, long n) { add_impl(a, b, y, n); } \
extern "C" __global__ void add_vec8_##S(const T* a, const T* b, T* y, long n8) { add_vec8_impl(a, b, y, n8); } \
extern "C" __global__ void activation_##S(const T* x, T* y, long n, int act) { activation_impl(x, y, n, act); } \
extern "C" __global__ void activation_vec8_##S(const T* x, T* y, long n8, int act) { activation_vec8_impl(x, y, n8, act); } \
extern "C" __global__ void embed_##S(const T* p, const T* cls, const T* pos, T* x, int np, int d, int prefix) \
    { embed_impl(p, cls, pos, x, np, d, prefix); } \
extern "C" __global__ void mean_tokens_##S(const T* x, T* y, int batch, int t, int d, int start) { mean_tokens_impl(x, y, batch, t, d, start); } \
extern "C" __global__ void select_token_##S(const T* x, T* y, int batch, int t, int d, int index) { select_token_impl(x, y, batch, t, d, index); } \
extern "C" __global__ void transpose12_##S(const T* x, T* y, int a, int c) { transpose12_impl(x, y, a, c); } \
extern "C" __global__ void im2col_##S(const T* img, T* cols, int ch, int h, int w, int patch, int vec) \
    { im2col_impl(img, cols, ch, h, w, patch, vec); }

VS_ELEMENTWISE(float, f32)
VS_ELEMENTWISE(bf16, bf16)

extern "C" __global__ void convert_f32_to_bf16(const float* x, bf16* y, long n)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) y[i] = from_f<bf16>(x[i]);
}
extern "C" __global__ void convert_bf16_to_f32(const bf16* x, float* y, long n)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) y[i] = to_f(x[i]);
}
