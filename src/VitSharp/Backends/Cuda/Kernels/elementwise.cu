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
template <typename T>
__device__ void activation_vec8_impl(const T* x, T* y, long n8, int act)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n8; i += (long)gridDim.x * blockDim.x)
    {
        float v[8];
        load8(x + 8 * i, v);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = activate(v[k], act);
        store8(y + 8 * i, v);
    }
}

// x (B, T, D) = [cls ; patches] + pos; cls may be null (T = Np).
template <typename T>
__device__ void embed_impl(const T* patches, const T* cls, const T* pos, T* x, int batch, int np, int d, int prefix)
{
    int t = np + prefix;
    long n = (long)batch * t * d;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
    {
        int c = (int)(i % d);
        long r = i / d;
        int tok = (int)(r % t), b = (int)(r / t);
        float v = tok < prefix ? to_f(cls[c]) : to_f(patches[((long)b * np + tok - prefix) * d + c]);
        x[i] = from_f<T>(v + to_f(pos[(long)tok * d + c]));
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
// One thread per (patch row, channel, dy) copies P contiguous pixels: the index arithmetic is paid once per P
// elements, and when P·size and the addresses allow, the copy is in 16-byte pieces.
template <typename T>
__device__ void im2col_impl(const T* img, T* cols, int batch, int ch, int h, int w, int patch, int vec)
{
    int gw = w / patch, gh = h / patch, np = gh * gw;
    long n = (long)batch * np * ch * patch;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
    {
        int dy = (int)(i % patch);
        long r = i / patch;
        int c = (int)(r % ch);
        r /= ch;
        int p = (int)(r % np), b = (int)(r / np);
        const T* src = img + (((long)b * ch + c) * h + (p / gw) * patch + dy) * w + (p % gw) * patch;
        T* dst = cols + r * ch * patch * patch + (c * patch + dy) * patch;
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
extern "C" __global__ void embed_##S(const T* p, const T* cls, const T* pos, T* x, int batch, int np, int d, int prefix) \
    { embed_impl(p, cls, pos, x, batch, np, d, prefix); } \
extern "C" __global__ void mean_tokens_##S(const T* x, T* y, int batch, int t, int d, int start) { mean_tokens_impl(x, y, batch, t, d, start); } \
extern "C" __global__ void select_token_##S(const T* x, T* y, int batch, int t, int d, int index) { select_token_impl(x, y, batch, t, d, index); } \
extern "C" __global__ void transpose12_##S(const T* x, T* y, int a, int c) { transpose12_impl(x, y, a, c); } \
extern "C" __global__ void im2col_##S(const T* img, T* cols, int batch, int ch, int h, int w, int patch, int vec) \
    { im2col_impl(img, cols, batch, ch, h, w, patch, vec); }

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
