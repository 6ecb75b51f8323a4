// CCT's sequence pooling (Nn.SeqPool): a softmax over each image's N token scores, the weighted sum of its tokens, and
// the backward. One block per image, fp32 sums in a fixed order (deterministic, no atomics), no scratch beyond 32
// floats of shared memory: capture-safe.

// w (B, N) F32 = softmax(scores (B, N)); y (B, D) = Σₙ wₙ · x (B, N, D)ₙ. Grid: B blocks.
template <typename T>
__device__ void seqpool_impl(const T* x, const T* scores, float* w, T* y, int n, int d)
{
    __shared__ float scratch[32];
    int b = blockIdx.x;
    const T* s = scores + (long)b * n;
    float* wb = w + (long)b * n;
    float m = -VS_INF;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, to_f(s[i]));
    m = block_reduce(m, scratch, true);
    float sum = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) sum += __expf(to_f(s[i]) - m);
    sum = block_reduce(sum, scratch, false);
    float inv = 1.f / sum;
    for (int i = threadIdx.x; i < n; i += blockDim.x) wb[i] = __expf(to_f(s[i]) - m) * inv;
    __syncthreads(); // the block's weights, written to global memory, are visible to the whole block after this
    const T* xb = x + (long)b * n * d;
    for (int c = threadIdx.x; c < d; c += blockDim.x)
    {
        float acc = 0.f;
        for (int i = 0; i < n; i++) acc += wb[i] * to_f(xb[(long)i * d + c]);
        y[(long)b * d + c] = from_f<T>(acc);
    }
}

// ds (B, N) = wₙ·(xₙ·dy − Σₘ wₘ·xₘ·dy); dx (B, N, D) = wₙ·dy. Grid: B blocks; each warp takes tokens in turn.
// The dot products are computed twice (once for the weighted sum, once for ds) instead of being kept in scratch.
template <typename T>
__device__ void seqpool_backward_impl(const T* dy, const T* x, const float* w, T* dx, T* ds, int n, int d)
{
    __shared__ float scratch[32];
    int b = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const T* xb = x + (long)b * n * d;
    const T* g = dy + (long)b * d;
    const float* wb = w + (long)b * n;
    float part = 0.f;
    for (int i = warp; i < n; i += warps)
    {
        float dot = 0.f;
        for (int c = lane; c < d; c += 32) dot += to_f(xb[(long)i * d + c]) * to_f(g[c]);
        dot = warp_sum(dot);
        if (lane == 0) part += wb[i] * dot;
    }
    float total = block_reduce(part, scratch, false);
    for (int i = warp; i < n; i += warps)
    {
        float dot = 0.f;
        for (int c = lane; c < d; c += 32) dot += to_f(xb[(long)i * d + c]) * to_f(g[c]);
        dot = warp_sum(dot);
        if (lane == 0) ds[(long)b * n + i] = from_f<T>(wb[i] * (dot - total));
    }
    T* dxb = dx + (long)b * n * d;
    for (long k = threadIdx.x; k < (long)n * d; k += blockDim.x)
    {
        int i = (int)(k / d), c = (int)(k - (long)i * d);
        dxb[k] = from_f<T>(wb[i] * to_f(g[c]));
    }
}

#define VS_SEQPOOL(T, S) \
extern "C" __global__ void seqpool_##S(const T* x, const T* scores, float* w, T* y, int n, int d) \
    { seqpool_impl(x, scores, w, y, n, d); } \
extern "C" __global__ void seqpool_backward_##S(const T* dy, const T* x, const float* w, T* dx, T* ds, int n, int d) \
    { seqpool_backward_impl(dy, x, w, dx, ds, n, d); }

VS_SEQPOOL(float, f32)
VS_SEQPOOL(bf16, bf16)
