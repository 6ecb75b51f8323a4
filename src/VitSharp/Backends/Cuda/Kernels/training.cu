// Training kernels: the backward passes of every layer (beside their forwards in the other files), the loss, the
// attention pieces the materialised-probability path needs, and the optimizer sweeps. T is the activation type (bf16 or
// float), S the type of saved LayerNorm statistics. Parameter gradients and optimizer state are always fp32.
// Determinism: no atomics. Every reduction runs in a fixed order — column sums in fixed row chunks, then the chunks in
// order; block sums in fixed grids — so the same inputs on the same GPU give the same bits.

// --- column sums: dst[c] += Σ_r x[r·stride + c] (bias gradients, position-embedding gradients) ---
template <typename T>
__device__ void colsum_partial_impl(const T* x, float* partial, int rows, int cols, long stride, int rpc)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= cols) return;
    int r0 = chunk * rpc, r1 = min(rows, r0 + rpc);
    float s = 0.f;
    for (int r = r0; r < r1; r++) s += to_f(x[(long)r * stride + c]);
    partial[(long)chunk * cols + c] = s;
}
// The chunks of a column, one warp per column: lane l sums chunks l, l+32, … in order, then a fixed shuffle tree.
extern "C" __global__ void colsum_final(const float* partial, float* dst, int chunks, int cols)
{
    int c = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (c >= cols) return;
    float s = 0.f;
    for (int k = lane; k < chunks; k += 32) s += partial[(long)k * cols + c];
    s = warp_sum(s);
    if (lane == 0) dst[c] += s;
}

// --- LayerNorm with saved statistics, and its backward (one warp per row) ---
template <typename T, typename S>
__device__ void layernorm_train_impl(const T* x, const T* g, const T* b, T* y, S* mean, S* rstd, int rows, int d, float eps)
{
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T* xr = x + (long)row * d;
    T* yr = y + (long)row * d;
    float s = 0.f;
    for (int i = lane; i < d; i += 32) s += to_f(xr[i]);
    float mu = warp_sum(s) / d;
    float v = 0.f;
    for (int i = lane; i < d; i += 32) { float t = to_f(xr[i]) - mu; v += t * t; }
    float rs = rsqrtf(warp_sum(v) / d + eps);
    for (int i = lane; i < d; i += 32) yr[i] = from_f<T>((to_f(xr[i]) - mu) * rs * to_f(g[i]) + to_f(b[i]));
    if (lane == 0) { mean[row] = from_f<S>(mu); rstd[row] = from_f<S>(rs); }
}

template <typename T, typename S>
__device__ void layernorm_backward_impl(const T* dy, const T* x, const T* g, const S* mean, const S* rstd, T* dx,
    int rows, int d, int accumulate)
{
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T* dyr = dy + (long)row * d;
    const T* xr = x + (long)row * d;
    T* dxr = dx + (long)row * d;
    float mu = to_f(mean[row]), rs = to_f(rstd[row]);
    float sg = 0.f, sgx = 0.f;
    for (int i = lane; i < d; i += 32)
    {
        float gi = to_f(dyr[i]) * to_f(g[i]), xh = (to_f(xr[i]) - mu) * rs;
        sg += gi; sgx += gi * xh;
    }
    float meanG = warp_sum(sg) / d, meanGx = warp_sum(sgx) / d;
    for (int i = lane; i < d; i += 32)
    {
        float gi = to_f(dyr[i]) * to_f(g[i]), xh = (to_f(xr[i]) - mu) * rs;
        float v = (gi - meanG - xh * meanGx) * rs;
        dxr[i] = from_f<T>(accumulate ? to_f(dxr[i]) + v : v);
    }
}

// dγ and dβ partial sums over a chunk of rows: partial (chunk, 2, d).
template <typename T, typename S>
__device__ void layernorm_param_partial_impl(const T* dy, const T* x, const S* mean, const S* rstd, float* partial, int rows, int d, int rpc)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= d) return;
    int r0 = chunk * rpc, r1 = min(rows, r0 + rpc);
    float sg = 0.f, sb = 0.f;
    for (int r = r0; r < r1; r++)
    {
        float dyv = to_f(dy[(long)r * d + c]);
        float xh = (to_f(x[(long)r * d + c]) - to_f(mean[r])) * to_f(rstd[r]);
        sg += dyv * xh; sb += dyv;
    }
    partial[(long)chunk * 2 * d + c] = sg;
    partial[(long)chunk * 2 * d + d + c] = sb;
}
// As colsum_final: one warp per channel, lanes over the chunks in a fixed order, then a fixed shuffle tree.
extern "C" __global__ void layernorm_param_final(const float* partial, float* dg, float* db, int chunks, int d)
{
    int c = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (c >= d) return;
    float sg = 0.f, sb = 0.f;
    for (int k = lane; k < chunks; k += 32) { sg += partial[(long)k * 2 * d + c]; sb += partial[(long)k * 2 * d + d + c]; }
    sg = warp_sum(sg);
    sb = warp_sum(sb);
    if (lane == 0) { dg[c] += sg; db[c] += sb; }
}

// --- activations' derivatives ---
__device__ __forceinline__ float activate_grad(float x, int act)
{
    switch (act)
    {
        case 1:
        {
            float cdf = 0.5f * (1.f + erff(x * 0.70710678118654752f));
            return cdf + x * __expf(-0.5f * x * x) * 0.39894228040143268f;
        }
        case 2:
        {
            const float k = 0.79788456080286536f;
            float t = tanhf(k * (x + 0.044715f * x * x * x));
            return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * k * (1.f + 3.f * 0.044715f * x * x);
        }
        case 3: { float t = tanhf(x); return 1.f - t * t; }
        case 4: { float s = 1.f / (1.f + __expf(-1.702f * x)); return s + 1.702f * x * s * (1.f - s); }
        case 5: return x > 0.f ? 1.f : 0.f;
        case 6: { float s = 1.f / (1.f + __expf(-x)); return s + x * s * (1.f - s); }
        default: return 1.f;
    }
}
template <typename T>
__device__ void activation_backward_impl(const T* dy, const T* pre, T* dx, long n, int act)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        dx[i] = from_f<T>(to_f(dy[i]) * activate_grad(to_f(pre[i]), act));
}

// --- elementwise helpers ---
template <typename T>
__device__ void mul_impl(const T* a, const T* b, T* y, long n)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        y[i] = from_f<T>(to_f(a[i]) * to_f(b[i]));
}
// y[r, i] = x[r, i] · s[r]: per-sample drop-path factors without a full-size mask.
template <typename T>
__device__ void mul_rows_impl(const T* x, const float* s, T* y, int per)
{
    int r = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < per; i += gridDim.x * blockDim.x)
        y[(long)r * per + i] = from_f<T>(to_f(x[(long)r * per + i]) * s[r]);
}
template <typename T>
__device__ void scale_impl(T* x, long n, float s)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        x[i] = from_f<T>(to_f(x[i]) * s);
}

// --- pooling and embedding backward ---
template <typename T>
__device__ void mean_tokens_backward_impl(const T* dy, T* dx, int t, int d, int start)
{
    int b = blockIdx.y;
    float inv = 1.f / (t - start);
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < t * d; i += gridDim.x * blockDim.x)
    {
        int tok = i / d, c = i - tok * d;
        dx[(long)b * t * d + i] = from_f<T>(tok >= start ? to_f(dy[(long)b * d + c]) * inv : 0.f);
    }
}
template <typename T>
__device__ void select_token_backward_impl(const T* dy, T* dx, int t, int d, int index)
{
    int b = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < t * d; i += gridDim.x * blockDim.x)
    {
        int tok = i / d, c = i - tok * d;
        dx[(long)b * t * d + i] = tok == index ? dy[(long)b * d + c] : from_f<T>(0.f);
    }
}
// dpatches (B, Np, D) = dx (B, T, D) without the prefix tokens.
template <typename T>
__device__ void embed_backward_patches_impl(const T* dx, T* dp, int np, int d, int prefix)
{
    int b = blockIdx.y, t = np + prefix;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < np * d; i += gridDim.x * blockDim.x)
        dp[(long)b * np * d + i] = dx[(long)b * t * d + prefix * d + i];
}

// --- attention on materialised probabilities ---
// qkv (B, N, G, H, hd) <-> heads (G, B, H, N, hd); G = 3 for q/k/v, 1 for the context. dir 0: to heads, 1: back.
template <typename T>
__device__ void split_heads_impl(const T* src, T* dst, int batch, int n, int g, int heads, int hd, int dir)
{
    int b = blockIdx.y, per = n * g * heads * hd;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < per; i += gridDim.x * blockDim.x)
    {
        int e = i % hd, rest = i / hd, h = rest % heads; rest /= heads;
        int gi = rest % g, tok = rest / g;
        long a = (long)b * per + i;                                              // (B, N, G, H, hd)
        long hix = ((((long)gi * batch + b) * heads + h) * n + tok) * hd + e;     // (G, B, H, N, hd)
        if (dir == 0) dst[hix] = src[a]; else dst[a] = src[hix];
    }
}
// P = softmax(S) over rows of length n (S already scaled, fp32, rows lds apart; P dense). One warp per row.
template <typename T>
__device__ void softmax_rows_impl(const float* s, T* p, long rows, int n, int lds)
{
    long row = blockIdx.x * (long)(blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* sr = s + row * lds;
    T* pr = p + row * n;
    float m = -VS_INF;
    for (int j = lane; j < n; j += 32) m = fmaxf(m, sr[j]);
    m = warp_max(m);
    float sum = 0.f;
    for (int j = lane; j < n; j += 32) sum += __expf(sr[j] - m);
    float inv = 1.f / warp_sum(sum);
    for (int j = lane; j < n; j += 32) pr[j] = from_f<T>(__expf(sr[j] - m) * inv);
}
// dS = P ⊙ (dP − Σ_j P·dP) · scale, one warp per row.
template <typename T>
__device__ void softmax_backward_impl(const T* p, const float* dp, T* ds, long rows, int n, float scale, int lddp)
{
    long row = blockIdx.x * (long)(blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T* pr = p + row * n;
    const float* dr = dp + row * lddp;
    T* sr = ds + row * n;
    float dot = 0.f;
    for (int j = lane; j < n; j += 32) dot += to_f(pr[j]) * dr[j];
    dot = warp_sum(dot);
    for (int j = lane; j < n; j += 32) sr[j] = from_f<T>(to_f(pr[j]) * (dr[j] - dot) * scale);
}

// --- loss: softmax cross-entropy against target distributions, one block per row ---
// rowstats[2·row] = loss of the row, rowstats[2·row+1] = 1 when argmax equals labels[row] (labels may be null).
template <typename T>
__device__ void softmax_xent_impl(const T* logits, const float* targets, T* dlogits, float* rowstats, const float* labels,
    int k, float gscale)
{
    __shared__ float scratch[32];
    __shared__ int sarg[32];
    int row = blockIdx.x;
    const T* l = logits + (long)row * k;
    const float* t = targets + (long)row * k;
    float m = -VS_INF; int arg = 0x7fffffff;
    for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
        float v = to_f(l[j]);
        if (v > m || (v == m && j < arg)) { m = v; arg = j; }
    }
    // block arg-max (first index of the maximum, as the CPU's strict comparison gives)
    for (int o = 16; o > 0; o >>= 1)
    {
        float mo = __shfl_xor_sync(0xffffffffu, m, o); int ao = __shfl_xor_sync(0xffffffffu, arg, o);
        if (mo > m || (mo == m && ao < arg)) { m = mo; arg = ao; }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) { scratch[warp] = m; sarg[warp] = arg; }
    __syncthreads();
    if (threadIdx.x == 0)
    {
        for (int w = 1; w < warps; w++)
            if (scratch[w] > scratch[0] || (scratch[w] == scratch[0] && sarg[w] < sarg[0])) { scratch[0] = scratch[w]; sarg[0] = sarg[w]; }
    }
    __syncthreads();
    m = scratch[0]; arg = sarg[0];
    __syncthreads();
    float sum = 0.f;
    for (int j = threadIdx.x; j < k; j += blockDim.x) sum += __expf(to_f(l[j]) - m);
    sum = block_reduce(sum, scratch, false);
    float lse = m + logf(sum);
    float loss = 0.f;
    for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
        float v = to_f(l[j]);
        loss -= t[j] * (v - lse);
        if (dlogits) dlogits[(long)row * k + j] = from_f<T>((__expf(v - lse) - t[j]) * gscale);
    }
    loss = block_reduce(loss, scratch, false);
    if (threadIdx.x == 0)
    {
        rowstats[2 * row] = loss;
        rowstats[2 * row + 1] = labels && (float)arg == labels[row] ? 1.f : 0.f;
    }
}
// stats[0] += mean row loss · lscale; stats[1] += correct rows. One block, rows summed in order per thread, then fixed tree.
extern "C" __global__ void xent_final(const float* rowstats, float* stats, int rows, float lscale)
{
    __shared__ float scratch[32];
    float l = 0.f, c = 0.f;
    for (int r = threadIdx.x; r < rows; r += blockDim.x) { l += rowstats[2 * r]; c += rowstats[2 * r + 1]; }
    l = block_reduce(l, scratch, false);
    c = block_reduce(c, scratch, false);
    if (threadIdx.x == 0) { stats[0] += l / rows * lscale; stats[1] += c; }
}

// --- DeiT's distillation term (ITrainingBackend.DistillationLoss), one block per row; the reduction is xent_final's ---
// mode 0 (hard): the row's CE against the teacher's arg-max (first maximum); ds = (softmax(s) − onehot)·gscale.
// mode 1 (soft): τ²/K · KL(softmax(t/τ) ‖ softmax(s/τ)) with log-probabilities as differences from the log-sum-exp;
// ds = (softmax(s/τ) − softmax(t/τ))·gscale. rowstats[2·row] = the row's loss, rowstats[2·row+1] = 0 (no accuracy).
template <typename T>
__device__ void distill_impl(const T* student, const T* teacher, T* ds, float* rowstats, int k, int mode, float tau, float gscale)
{
    __shared__ float scratch[32];
    __shared__ int sarg[32];
    int row = blockIdx.x;
    const T* s = student + (long)row * k;
    const T* t = teacher + (long)row * k;
    float inv = mode ? 1.f / tau : 1.f;
    // The teacher's maximum of t·inv and its first index (block arg-max as softmax_xent's), the student's maximum.
    float tm = -VS_INF, sm = -VS_INF; int arg = 0x7fffffff;
    for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
        float v = to_f(t[j]) * inv;
        if (v > tm || (v == tm && j < arg)) { tm = v; arg = j; }
        sm = fmaxf(sm, to_f(s[j]) * inv);
    }
    for (int o = 16; o > 0; o >>= 1)
    {
        float mo = __shfl_xor_sync(0xffffffffu, tm, o); int ao = __shfl_xor_sync(0xffffffffu, arg, o);
        if (mo > tm || (mo == tm && ao < arg)) { tm = mo; arg = ao; }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) { scratch[warp] = tm; sarg[warp] = arg; }
    __syncthreads();
    if (threadIdx.x == 0)
    {
        for (int w = 1; w < warps; w++)
            if (scratch[w] > scratch[0] || (scratch[w] == scratch[0] && sarg[w] < sarg[0])) { scratch[0] = scratch[w]; sarg[0] = sarg[w]; }
    }
    __syncthreads();
    tm = scratch[0]; arg = sarg[0];
    __syncthreads();
    sm = block_reduce(sm, scratch, true);
    float sz = 0.f, tz = 0.f;
    for (int j = threadIdx.x; j < k; j += blockDim.x) { sz += __expf(to_f(s[j]) * inv - sm); tz += __expf(to_f(t[j]) * inv - tm); }
    sz = block_reduce(sz, scratch, false);
    tz = block_reduce(tz, scratch, false);
    float slse = sm + logf(sz), tlse = tm + logf(tz);
    float loss = 0.f;
    for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
        float lq = to_f(s[j]) * inv - slse, g;
        if (mode == 0) { if (j == arg) loss -= lq; g = __expf(lq) - (j == arg ? 1.f : 0.f); }
        else { float lp = to_f(t[j]) * inv - tlse, p = __expf(lp); loss += p * (lp - lq); g = __expf(lq) - p; }
        ds[(long)row * k + j] = from_f<T>(g * gscale);
    }
    loss = block_reduce(loss, scratch, false);
    if (threadIdx.x == 0)
    {
        rowstats[2 * row] = mode ? loss * tau * tau / k : loss;
        rowstats[2 * row + 1] = 0.f;
    }
}

// --- global norm: Σ x² in double over a fixed grid, then the clip factor applied on the device ---
template <typename T>
__device__ void sumsq_partial_impl(const T* x, long n, double* partial)
{
    __shared__ double sd[256];
    double s = 0;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
    {
        double v = to_f(x[i]);
        s += v * v;
    }
    sd[threadIdx.x] = s;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1)
    {
        if (threadIdx.x < o) sd[threadIdx.x] += sd[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = sd[0];
}
extern "C" __global__ void sumsq_final(const double* partial, int blocks, double* out)
{
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double s = 0;
    for (int i = 0; i < blocks; i++) s += partial[i];
    *out = s;
}
// norm = sqrt(*sumsq); stats[2] = norm; g *= max/(norm + 1e-6) when norm > max > 0 (torch.nn.utils.clip_grad_norm_).
extern "C" __global__ void clip_by_norm(float* g, long n, const double* sumsq, float maxNorm, float* stats)
{
    float norm = (float)sqrt(*sumsq);
    if (blockIdx.x == 0 && threadIdx.x == 0 && stats) stats[2] = norm;
    if (!(maxNorm > 0.f && norm > maxNorm)) return;
    float s = maxNorm / (norm + 1e-6f);
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) g[i] *= s;
}

// --- optimizers (fp32 master weights and state), the CPU backend's arithmetic ---
// One AdamW element, PyTorch's order of operations with every rounding explicit (_rn intrinsics are never contracted
// into FMAs), so the per-run and the one-sweep kernels give the same bits whatever the compiler fuses — and the CPU's.
__device__ __forceinline__ void adamw_elem(float* p, const float* g, float* m, float* v, long i, bool decays, float beta1, float beta2,
    float eps, float stepSize, float bc2Sqrt, float decay)
{
    float w1 = __fsub_rn(1.f, beta1), w2 = __fsub_rn(1.f, beta2);
    float gi = g[i];
    float pi = decays ? __fmul_rn(p[i], decay) : p[i];
    float mi = __fadd_rn(m[i], __fmul_rn(w1, __fsub_rn(gi, m[i])));
    float vi = __fadd_rn(__fmul_rn(v[i], beta2), __fmul_rn(__fmul_rn(w2, gi), gi));
    m[i] = mi; v[i] = vi;
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2Sqrt), eps);
    p[i] = __fadd_rn(pi, __fmul_rn(-stepSize, __fdiv_rn(mi, denom)));
}
extern "C" __global__ void adamw_step(float* p, const float* g, float* m, float* v, long n, float beta1, float beta2, float eps,
    float stepSize, float bc2Sqrt, float decay, int hasDecay)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        adamw_elem(p, g, m, v, i, hasDecay != 0, beta1, beta2, eps, stepSize, bc2Sqrt, decay);
}
// adamw_step over a whole buffer in one sweep: decayMask[i] (bf16 bits, 0 or 1.0) says whether element i decays.
extern "C" __global__ void adamw_step_masked(float* p, const float* g, float* m, float* v, const unsigned short* decayMask, long n,
    float beta1, float beta2, float eps, float stepSize, float bc2Sqrt, float decay)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        adamw_elem(p, g, m, v, i, decayMask[i] != 0, beta1, beta2, eps, stepSize, bc2Sqrt, decay);
}
extern "C" __global__ void sgd_step(float* p, const float* g, float* buf, long n, float lr, float momentum, float wd, int nesterov, int first)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
    {
        float d = g[i];
        if (wd != 0.f) d += wd * p[i];
        if (momentum != 0.f)
        {
            buf[i] = first ? d : momentum * buf[i] + d;
            d = nesterov ? d + momentum * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}
extern "C" __global__ void ema_update(float* e, const float* p, long n, float decay)
{
    float w = 1.f - decay;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) e[i] += w * (p[i] - e[i]);
}

#define TRAIN_KERNELS(T, S) \
extern "C" __global__ void colsum_partial_##S(const T* x, float* partial, int rows, int cols, long stride, int rpc) { colsum_partial_impl(x, partial, rows, cols, stride, rpc); } \
extern "C" __global__ void activation_backward_##S(const T* dy, const T* pre, T* dx, long n, int act) { activation_backward_impl(dy, pre, dx, n, act); } \
extern "C" __global__ void mul_##S(const T* a, const T* b, T* y, long n) { mul_impl(a, b, y, n); } \
extern "C" __global__ void mul_rows_##S(const T* x, const float* s, T* y, int per) { mul_rows_impl(x, s, y, per); } \
extern "C" __global__ void scale_##S(T* x, long n, float s) { scale_impl(x, n, s); } \
extern "C" __global__ void mean_tokens_backward_##S(const T* dy, T* dx, int t, int d, int start) { mean_tokens_backward_impl(dy, dx, t, d, start); } \
extern "C" __global__ void select_token_backward_##S(const T* dy, T* dx, int t, int d, int index) { select_token_backward_impl(dy, dx, t, d, index); } \
extern "C" __global__ void embed_backward_patches_##S(const T* dx, T* dp, int np, int d, int prefix) { embed_backward_patches_impl(dx, dp, np, d, prefix); } \
extern "C" __global__ void split_heads_##S(const T* src, T* dst, int batch, int n, int g, int heads, int hd, int dir) { split_heads_impl(src, dst, batch, n, g, heads, hd, dir); } \
extern "C" __global__ void softmax_rows_##S(const float* s, T* p, long rows, int n, int lds) { softmax_rows_impl(s, p, rows, n, lds); } \
extern "C" __global__ void softmax_backward_##S(const T* p, const float* dp, T* ds, long rows, int n, float scale, int lddp) { softmax_backward_impl(p, dp, ds, rows, n, scale, lddp); } \
extern "C" __global__ void softmax_xent_##S(const T* l, const float* t, T* dl, float* rs, const float* lab, int k, float gs) { softmax_xent_impl(l, t, dl, rs, lab, k, gs); } \
extern "C" __global__ void distill_##S(const T* s, const T* t, T* ds, float* rs, int k, int mode, float tau, float gs) { distill_impl(s, t, ds, rs, k, mode, tau, gs); } \
extern "C" __global__ void sumsq_partial_##S(const T* x, long n, double* partial) { sumsq_partial_impl(x, n, partial); }
TRAIN_KERNELS(float, f32)
TRAIN_KERNELS(bf16, bf16)

// LayerNorm with statistics in S: name suffix activation type, then statistics type.
#define LN_TRAIN(T, ST, S) \
extern "C" __global__ void layernorm_train_##S(const T* x, const T* g, const T* b, T* y, ST* mean, ST* rstd, int rows, int d, float eps) { layernorm_train_impl(x, g, b, y, mean, rstd, rows, d, eps); } \
extern "C" __global__ void layernorm_backward_##S(const T* dy, const T* x, const T* g, const ST* mean, const ST* rstd, T* dx, int rows, int d, int acc) { layernorm_backward_impl(dy, x, g, mean, rstd, dx, rows, d, acc); } \
extern "C" __global__ void layernorm_param_partial_##S(const T* dy, const T* x, const ST* mean, const ST* rstd, float* partial, int rows, int d, int rpc) { layernorm_param_partial_impl(dy, x, mean, rstd, partial, rows, d, rpc); }
LN_TRAIN(float, float, f32_f32)
LN_TRAIN(bf16, bf16, bf16_bf16)
LN_TRAIN(bf16, float, bf16_f32)

// --- vectorised variants (16-byte accesses; used when sizes are multiples of 8 and pointers 16-byte aligned) ---
template <typename T>
__device__ void split_heads_vec8_impl(const T* src, T* dst, int batch, int n, int g, int heads, int hd, int dir)
{
    int b = blockIdx.y, hd8 = hd >> 3, per = n * g * heads * hd8;
    for (int v = blockIdx.x * blockDim.x + threadIdx.x; v < per; v += gridDim.x * blockDim.x)
    {
        int e8 = v % hd8, rest = v / hd8, h = rest % heads; rest /= heads;
        int gi = rest % g, tok = rest / g;
        const long a = (long)b * per * 8 + (long)v * 8;
        const long hix = ((((long)gi * batch + b) * heads + h) * n + tok) * hd + e8 * 8;
        if (dir == 0) *(uint4*)(dst + hix) = *(const uint4*)(src + a);
        else *(uint4*)(dst + a) = *(const uint4*)(src + hix);
    }
}
// float rows move as two uint4 per 8 elements
template <>
__device__ void split_heads_vec8_impl<float>(const float* src, float* dst, int batch, int n, int g, int heads, int hd, int dir)
{
    int b = blockIdx.y, hd8 = hd >> 3, per = n * g * heads * hd8;
    for (int v = blockIdx.x * blockDim.x + threadIdx.x; v < per; v += gridDim.x * blockDim.x)
    {
        int e8 = v % hd8, rest = v / hd8, h = rest % heads; rest /= heads;
        int gi = rest % g, tok = rest / g;
        const long a = (long)b * per * 8 + (long)v * 8;
        const long hix = ((((long)gi * batch + b) * heads + h) * n + tok) * hd + e8 * 8;
        const float* s = dir == 0 ? src + a : src + hix;
        float* d = dir == 0 ? dst + hix : dst + a;
        ((uint4*)d)[0] = ((const uint4*)s)[0];
        ((uint4*)d)[1] = ((const uint4*)s)[1];
    }
}

template <typename T>
__device__ void activation_backward_vec8_impl(const T* dy, const T* pre, T* dx, long n8, int act)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n8; i += (long)gridDim.x * blockDim.x)
    {
        float g[8], x[8];
        load8(dy + 8 * i, g);
        load8(pre + 8 * i, x);
#pragma unroll
        for (int k = 0; k < 8; k++) g[k] *= activate_grad(x[k], act);
        store8(dx + 8 * i, g);
    }
}

// One warp per row, the row held in registers: C chunks of 8 elements per lane (d ≤ 256·C, d % 8 == 0).
template <typename T, typename S, int C>
__device__ void layernorm_train_vec_impl(const T* x, const T* g, const T* b, T* y, S* mean, S* rstd, int rows, int d, float eps)
{
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T* xr = x + (long)row * d;
    float v[C][8];
    float s = 0.f;
#pragma unroll
    for (int c = 0; c < C; c++)
    {
        int i = (lane + 32 * c) * 8;
        if (i < d) { load8(xr + i, v[c]); for (int k = 0; k < 8; k++) s += v[c][k]; }
    }
    float mu = warp_sum(s) / d, q = 0.f;
#pragma unroll
    for (int c = 0; c < C; c++)
        if ((lane + 32 * c) * 8 < d) for (int k = 0; k < 8; k++) { float t = v[c][k] - mu; q += t * t; }
    float rs = rsqrtf(warp_sum(q) / d + eps);
#pragma unroll
    for (int c = 0; c < C; c++)
    {
        int i = (lane + 32 * c) * 8;
        if (i >= d) continue;
        float gg[8], bb[8];
        load8(g + i, gg); load8(b + i, bb);
        for (int k = 0; k < 8; k++) v[c][k] = (v[c][k] - mu) * rs * gg[k] + bb[k];
        store8(y + (long)row * d + i, v[c]);
    }
    if (lane == 0) { mean[row] = from_f<S>(mu); rstd[row] = from_f<S>(rs); }
}

template <typename T, typename S, int C>
__device__ void layernorm_backward_vec_impl(const T* dy, const T* x, const T* g, const S* mean, const S* rstd, T* dx,
    int rows, int d, int accumulate)
{
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    long off = (long)row * d;
    float mu = to_f(mean[row]), rs = to_f(rstd[row]);
    float gx[C][8], xh[C][8];
    float sg = 0.f, sgx = 0.f;
#pragma unroll
    for (int c = 0; c < C; c++)
    {
        int i = (lane + 32 * c) * 8;
        if (i >= d) continue;
        float gg[8];
        load8(dy + off + i, gx[c]); load8(x + off + i, xh[c]); load8(g + i, gg);
        for (int k = 0; k < 8; k++)
        {
            gx[c][k] *= gg[k];
            xh[c][k] = (xh[c][k] - mu) * rs;
            sg += gx[c][k]; sgx += gx[c][k] * xh[c][k];
        }
    }
    float meanG = warp_sum(sg) / d, meanGx = warp_sum(sgx) / d;
#pragma unroll
    for (int c = 0; c < C; c++)
    {
        int i = (lane + 32 * c) * 8;
        if (i >= d) continue;
        float o[8];
        if (accumulate) load8(dx + off + i, o);
        for (int k = 0; k < 8; k++)
        {
            float v = (gx[c][k] - meanG - xh[c][k] * meanGx) * rs;
            o[k] = accumulate ? o[k] + v : v;
        }
        store8(dx + off + i, o);
    }
}

#define TRAIN_VEC_KERNELS(T, S) \
extern "C" __global__ void split_heads_vec8_##S(const T* src, T* dst, int batch, int n, int g, int heads, int hd, int dir) { split_heads_vec8_impl<T>(src, dst, batch, n, g, heads, hd, dir); } \
extern "C" __global__ void activation_backward_vec8_##S(const T* dy, const T* pre, T* dx, long n8, int act) { activation_backward_vec8_impl(dy, pre, dx, n8, act); }
TRAIN_VEC_KERNELS(float, f32)
TRAIN_VEC_KERNELS(bf16, bf16)

#define LN_VEC(T, ST, S, C) \
extern "C" __global__ void layernorm_train_vec_c##C##_##S(const T* x, const T* g, const T* b, T* y, ST* mean, ST* rstd, int rows, int d, float eps) { layernorm_train_vec_impl<T, ST, C>(x, g, b, y, mean, rstd, rows, d, eps); } \
extern "C" __global__ void layernorm_backward_vec_c##C##_##S(const T* dy, const T* x, const T* g, const ST* mean, const ST* rstd, T* dx, int rows, int d, int acc) { layernorm_backward_vec_impl<T, ST, C>(dy, x, g, mean, rstd, dx, rows, d, acc); }
#define LN_VEC_ALL(C) LN_VEC(float, float, f32_f32, C) LN_VEC(bf16, bf16, bf16_bf16, C) LN_VEC(bf16, float, bf16_f32, C)
LN_VEC_ALL(1)
LN_VEC_ALL(2)
LN_VEC_ALL(3)
LN_VEC_ALL(4)

// Column sums and LayerNorm parameter sums with 8 columns per thread (16-byte loads); partial (chunk, cols) as above.
template <typename T>
__device__ void colsum_partial_vec8_impl(const T* x, float* partial, int rows, int cols, long stride, int rpc)
{
    int c8 = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c8 * 8 >= cols) return;
    int r0 = chunk * rpc, r1 = min(rows, r0 + rpc);
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, v[8];
    for (int r = r0; r < r1; r++)
    {
        load8(x + (long)r * stride + c8 * 8, v);
#pragma unroll
        for (int k = 0; k < 8; k++) s[k] += v[k];
    }
    float* p = partial + (long)chunk * cols + c8 * 8;
#pragma unroll
    for (int k = 0; k < 8; k++) p[k] = s[k];
}
template <typename T, typename S>
__device__ void layernorm_param_partial_vec8_impl(const T* dy, const T* x, const S* mean, const S* rstd, float* partial, int rows, int d, int rpc)
{
    int c8 = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c8 * 8 >= d) return;
    int r0 = chunk * rpc, r1 = min(rows, r0 + rpc);
    float sg[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sb[8] = {0, 0, 0, 0, 0, 0, 0, 0}, g[8], xv[8];
    for (int r = r0; r < r1; r++)
    {
        load8(dy + (long)r * d + c8 * 8, g);
        load8(x + (long)r * d + c8 * 8, xv);
        float mu = to_f(mean[r]), rs = to_f(rstd[r]);
#pragma unroll
        for (int k = 0; k < 8; k++) { sg[k] += g[k] * ((xv[k] - mu) * rs); sb[k] += g[k]; }
    }
    float* p = partial + (long)chunk * 2 * d + c8 * 8;
#pragma unroll
    for (int k = 0; k < 8; k++) { p[k] = sg[k]; p[d + k] = sb[k]; }
}
extern "C" __global__ void colsum_partial_vec8_f32(const float* x, float* partial, int rows, int cols, long stride, int rpc) { colsum_partial_vec8_impl(x, partial, rows, cols, stride, rpc); }
extern "C" __global__ void colsum_partial_vec8_bf16(const bf16* x, float* partial, int rows, int cols, long stride, int rpc) { colsum_partial_vec8_impl(x, partial, rows, cols, stride, rpc); }
#define LN_PARAM_VEC(T, ST, S) \
extern "C" __global__ void layernorm_param_partial_vec8_##S(const T* dy, const T* x, const ST* mean, const ST* rstd, float* partial, int rows, int d, int rpc) { layernorm_param_partial_vec8_impl(dy, x, mean, rstd, partial, rows, d, rpc); }
LN_PARAM_VEC(float, float, f32_f32)
LN_PARAM_VEC(bf16, bf16, bf16_bf16)
LN_PARAM_VEC(bf16, float, bf16_f32)
