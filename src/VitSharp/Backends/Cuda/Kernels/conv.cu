// CCT's convolutional tokenizer (Nn.ConvTokenizer): the 3×3 unfold (stride 1, zero padding 1) whose product with the
// weight is the convolution, 3×3 max pooling at stride 2 (padding 1) on channels-last maps, and their backwards. Every
// kernel is a gather (one thread per output element, a fixed order of reads), so results are deterministic and there
// are no atomics. Grid-stride loops over long indices; sums in fp32.

// cols (B·H·W, C·9) in (c, kh, kw) order from x: (B, C, H, W) when nchw, else (B, H·W, C).
template <typename T>
__device__ void im2col3x3_impl(const T* x, T* cols, int batch, int c, int h, int w, int nchw)
{
    long k = (long)c * 9, n = (long)batch * h * w * k;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
    {
        long row = i / k;
        int col = (int)(i - row * k), ch = col / 9, tap = col - ch * 9, kh = tap / 3, kw = tap - kh * 3;
        int xx = (int)(row % w), y = (int)((row / w) % h), b = (int)(row / ((long)w * h));
        int iy = y + kh - 1, ix = xx + kw - 1;
        float v = 0.f;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w)
            v = to_f(nchw ? x[(((long)b * c + ch) * h + iy) * w + ix] : x[(((long)b * h + iy) * w + ix) * c + ch]);
        cols[i] = from_f<T>(v);
    }
}

// dx (B, H·W, C) = Σ over the nine column entries that copied each pixel, in (kh, kw) order.
template <typename T>
__device__ void col2im3x3_impl(const T* dcols, T* dx, int batch, int c, int h, int w)
{
    long n = (long)batch * h * w * c;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
    {
        int ch = (int)(i % c);
        long pix = i / c;
        int xx = (int)(pix % w), y = (int)((pix / w) % h), b = (int)(pix / ((long)w * h));
        float s = 0.f;
        for (int kh = 0; kh < 3; kh++)
        {
            int oy = y - kh + 1;
            if (oy < 0 || oy >= h) continue;
            for (int kw = 0; kw < 3; kw++)
            {
                int ox = xx - kw + 1;
                if (ox < 0 || ox >= w) continue;
                s += to_f(dcols[(((long)b * h + oy) * w + ox) * c * 9 + ch * 9 + kh * 3 + kw]);
            }
        }
        dx[i] = from_f<T>(s);
    }
}

// The flat pixel index (iy·W + ix) of window (oy, ox)'s first maximum in row-major scan order (PyTorch's choice).
template <typename T>
__device__ __forceinline__ int pool_argmax(const T* img, int h, int w, int c, int ch, int oy, int ox)
{
    int best = -1;
    float m = 0.f;
    for (int iy = max(0, 2 * oy - 1); iy <= min(h - 1, 2 * oy + 1); iy++)
        for (int ix = max(0, 2 * ox - 1); ix <= min(w - 1, 2 * ox + 1); ix++)
        {
            float v = to_f(img[((long)iy * w + ix) * c + ch]);
            if (best < 0 || v > m) { m = v; best = iy * w + ix; }
        }
    return best;
}

template <typename T>
__device__ void maxpool3x3s2_impl(const T* x, T* y, int batch, int h, int w, int c)
{
    int ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1;
    long n = (long)batch * ho * wo * c;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
    {
        int ch = (int)(i % c);
        long pix = i / c;
        int ox = (int)(pix % wo), oy = (int)((pix / wo) % ho), b = (int)(pix / ((long)wo * ho));
        const T* img = x + (long)b * h * w * c;
        y[i] = img[(long)pool_argmax(img, h, w, c, ch, oy, ox) * c + ch];
    }
}

// dx (B, H·W, C): each input pixel gathers dy from the (at most 2×2) windows that hold it and picked it as their maximum,
// windows in row-major order.
template <typename T>
__device__ void maxpool3x3s2_backward_impl(const T* dy, const T* x, T* dx, int batch, int h, int w, int c)
{
    int ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1;
    long n = (long)batch * h * w * c;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
    {
        int ch = (int)(i % c);
        long pix = i / c;
        int ix = (int)(pix % w), iy = (int)((pix / w) % h), b = (int)(pix / ((long)w * h));
        const T* img = x + (long)b * h * w * c;
        int self = iy * w + ix;
        float s = 0.f;
        // Window oy covers rows 2·oy − 1 … 2·oy + 1: those holding iy are oy = ⌈(iy − 1)/2⌉ … ⌊(iy + 1)/2⌋.
        for (int oy = iy / 2; oy <= min(ho - 1, (iy + 1) / 2); oy++)
            for (int ox = ix / 2; ox <= min(wo - 1, (ix + 1) / 2); ox++)
                if (pool_argmax(img, h, w, c, ch, oy, ox) == self) s += to_f(dy[(((long)b * ho + oy) * wo + ox) * c + ch]);
        dx[i] = from_f<T>(s);
    }
}

#define VS_CONV(T, S) \
extern "C" __global__ void im2col3x3_##S(const T* x, T* cols, int batch, int c, int h, int w, int nchw) \
    { im2col3x3_impl(x, cols, batch, c, h, w, nchw); } \
extern "C" __global__ void col2im3x3_##S(const T* dcols, T* dx, int batch, int c, int h, int w) \
    { col2im3x3_impl(dcols, dx, batch, c, h, w); } \
extern "C" __global__ void maxpool3x3s2_##S(const T* x, T* y, int batch, int h, int w, int c) \
    { maxpool3x3s2_impl(x, y, batch, h, w, c); } \
extern "C" __global__ void maxpool3x3s2_backward_##S(const T* dy, const T* x, T* dx, int batch, int h, int w, int c) \
    { maxpool3x3s2_backward_impl(dy, x, dx, batch, h, w, c); }

VS_CONV(float, f32)
VS_CONV(bf16, bf16)
