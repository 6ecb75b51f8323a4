// Multi-head self-attention on the fused qkv projection, laid out (B, N, 3, H, hd) like timm's qkv Linear; output
// (B, N, H·hd).
//
// flash_attn_bf16_hd*_w*: flash-attention (Dao et al., FlashAttention-2 forward): each block takes 64 or 128 queries
// of one (batch, head); each of its 4 or 8 warps owns 16 query rows and keeps them in registers as mma fragments. K and V go
// through shared memory 64 keys at a time (32 for hd 128), double-buffered with cp.async; S = Q·Kᵀ and O += P·V
// run on the tensor cores (mma.sync m16n8k16, bf16 in, fp32 accumulate), with the online softmax (running max and
// sum per row, exp2 with the scale folded in) in between, so the N×N scores never reach device memory. Keys past N
// are zero-filled and masked to −∞; key blocks and query warps wholly past N skip their tensor-core work.
//
// attention_tiled_*: head widths up to 128, either dtype, fp32 arithmetic with expf (the F32 path's kernel, and
// bf16 at head widths the flash kernel lacks): 32 queries per block, 8 per warp; K/V tiles of 32 keys in shared
// memory; lane j scores key j, then an online softmax and P·V with P broadcast by shuffles, lanes owning dims.
// attention_generic_*: any width, one block per (query, head, batch), scores in shared memory; writes `probs`
// (attention maps) too.

__device__ __forceinline__ uint32_t smem_addr(const void* p)
{
    uint32_t r;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
    return r;
}

__device__ __forceinline__ void mma_bf16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x in one instruction (2 ulp; exp2(−∞) = 0): the P values it feeds are rounded to bf16 anyway.
__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int bytes)
{
    // bytes < 16 zero-fills the rest: rows past the last key arrive as zeros.
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(smem_addr(smem)), "l"(gmem), "r"(bytes));
}

// Rows r0 and r1 = r0 + 8 (zero past n) of a row-major bf16 matrix (rows rs elements apart) as the A fragments of
// KS k-steps of 16 columns: the layout the forward keeps Q in and the backward Q, dO, K and V.
template <int KS>
__device__ __forceinline__ void load_a_frags(uint32_t (&f)[KS][4], const unsigned short* base, long rs, int r0, int r1, int n, int t4)
{
#pragma unroll
    for (int kk = 0; kk < KS; kk++)
    {
        int c = kk * 16 + t4 * 2;
        f[kk][0] = r0 < n ? *(const uint32_t*)(base + r0 * rs + c) : 0u;
        f[kk][1] = r1 < n ? *(const uint32_t*)(base + r1 * rs + c) : 0u;
        f[kk][2] = r0 < n ? *(const uint32_t*)(base + r0 * rs + c + 8) : 0u;
        f[kk][3] = r1 < n ? *(const uint32_t*)(base + r1 * rs + c + 8) : 0u;
    }
}

// Rows [r0, r0 + ROWS) of two row-major bf16 matrices (HD columns) into shared tiles of row stride STR with cp.async,
// rows past n zero-filled. The caller commits the group.
template <int ROWS, int HD, int STR>
__device__ __forceinline__ void load_tile_pair(unsigned short* sa, unsigned short* sb, const unsigned short* ga, long lda,
                                               const unsigned short* gb, long ldb, int r0, int n)
{
    constexpr int DT = HD / 8;
    for (int i = threadIdx.x; i < ROWS * DT; i += blockDim.x)
    {
        int r = i / DT, c = (i % DT) * 8;
        bool ok = r0 + r < n;
        cp_async16(&sa[r * STR + c], ok ? ga + (r0 + r) * lda + c : ga, ok ? 16 : 0);
        cp_async16(&sb[r * STR + c], ok ? gb + (r0 + r) * ldb + c : gb, ok ? 16 : 0);
    }
}

// One 32-row chunk of products: acc[j] = A · Bᵀ for the warp's 16 rows (A: KS k-steps of fragments) against rows
// cb + 8j … cb + 8j + 7 of a shared row-major tile B (row stride STR); 8-row blocks at or past `valid` are skipped (0).
// S = Q·Kᵀ in the forward and dQ kernels, dP = dO·Vᵀ, and their transposes in the dK/dV kernel.
template <int KS, int STR>
__device__ __forceinline__ void chunk_products(float (&acc)[4][4], const uint32_t (&a)[KS][4], const unsigned short* tile, int cb,
                                               int valid, int g, int t4)
{
#pragma unroll
    for (int j = 0; j < 4; j++)
    {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
        if (cb + j * 8 < valid) // skip row blocks wholly past N
#pragma unroll
            for (int kk = 0; kk < KS; kk++)
            {
                const unsigned short* p = tile + (cb + j * 8 + g) * STR + kk * 16 + t4 * 2;
                mma_bf16(acc[j], a[kk], *(const uint32_t*)p, *(const uint32_t*)(p + 8));
            }
    }
}

// Scores of keys at or past `valid` (relative to the chunk's first key kb) set to −∞.
__device__ __forceinline__ void mask_keys(float (&s)[4][4], int kb, int valid, int t4)
{
#pragma unroll
    for (int j = 0; j < 4; j++)
    {
        int key = kb + j * 8 + t4 * 2;
        if (key >= valid) s[j][0] = s[j][2] = -VS_INF;
        if (key + 1 >= valid) s[j][1] = s[j][3] = -VS_INF;
    }
}

// The B fragments of one 16 (k) × 8 (n) block of a row-major [k][n] shared tile, by the transposing load; addr is the
// shared address of row (lane & 15) of the block.
__device__ __forceinline__ void ldmatrix_trans_b(uint32_t& b0, uint32_t& b1, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];" : "=r"(b0), "=r"(b1) : "r"(addr));
}

template <int HD, int BK, int WARPS>
__device__ void flash_attn_bf16_impl(const unsigned short* __restrict__ qkv, unsigned short* __restrict__ y, int n, int heads,
                                     float scale_log2, float* __restrict__ lse = nullptr)
{
    constexpr int BQ = WARPS * 16, STR = HD + 8; // +8 elements (16 bytes) per row: conflict-free fragment reads
    constexpr int KS = HD / 16, DT = HD / 8;
    // Two K/V buffers: the next tile streams in (cp.async) while the tensor cores work on this one.
    __shared__ __align__(16) unsigned short Ks[2][BK * STR];
    __shared__ __align__(16) unsigned short Vs[2][BK * STR];
    int h = blockIdx.y, b = blockIdx.z;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    long rs = 3L * heads * HD; // elements between consecutive tokens
    const unsigned short* base = qkv + (long)b * n * rs + h * HD;
    const unsigned short* Kg = base + (long)heads * HD;
    const unsigned short* Vg = base + 2L * heads * HD;
    int r0 = blockIdx.x * BQ + warp * 16 + g, r1 = r0 + 8;
    // A warp whose 16 rows all lie past N only helps load K/V (197 tokens: 13 of 16 warps in the last tile idle).
    bool active = blockIdx.x * BQ + warp * 16 < n;

    uint32_t qf[KS][4];
    load_a_frags<KS>(qf, base, rs, r0, r1, n, t4);
    float o[DT][4];
#pragma unroll
    for (int d = 0; d < DT; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m0 = -VS_INF, m1 = -VS_INF, l0 = 0.f, l1 = 0.f;

    auto load_tile = [&](int k0, int buf)
    {
        load_tile_pair<BK, HD, STR>(Ks[buf], Vs[buf], Kg, rs, Vg, rs, k0, n);
        asm volatile("cp.async.commit_group;");
    };

    int tiles = (n + BK - 1) / BK;
    load_tile(0, 0);
    for (int t = 0; t < tiles; t++)
    {
        int k0 = t * BK, buf = t & 1, valid = n - k0; // valid ≥ 1: every tile holds a key
        if (t + 1 < tiles) { load_tile(k0 + BK, buf ^ 1); asm volatile("cp.async.wait_group 1;"); }
        else asm volatile("cp.async.wait_group 0;");
        __syncthreads();
        if (active)
        {
            // The 64-key tile is consumed 32 keys at a time: fewer live registers (scores and P fragments), so more
            // warps fit on a multiprocessor.
#pragma unroll
            for (int kb = 0; kb < BK; kb += 32)
            {
                if (kb >= valid) break;
                float s[4][4];
                chunk_products<KS, STR>(s, qf, Ks[buf], kb, valid, g, t4);
                if (valid < kb + 32) mask_keys(s, kb, valid, t4); // only the last tile has keys past N
                // Running max in raw score units (scale > 0 commutes with max); the scale rides in the exp2's FMA.
                float mx0 = m0, mx1 = m1;
#pragma unroll
                for (int j = 0; j < 4; j++)
                {
                    mx0 = fmaxf(mx0, fmaxf(s[j][0], s[j][1]));
                    mx1 = fmaxf(mx1, fmaxf(s[j][2], s[j][3]));
                }
                mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
                mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
                mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
                mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
                // Each 32-key chunk processed holds a valid key, so mx is finite; exp2(−∞) = 0 on the first one.
                float a0 = fast_exp2((m0 - mx0) * scale_log2), a1 = fast_exp2((m1 - mx1) * scale_log2);
                m0 = mx0; m1 = mx1;
                float ms0 = mx0 * scale_log2, ms1 = mx1 * scale_log2;
                l0 *= a0; l1 *= a1;
#pragma unroll
                for (int d = 0; d < DT; d++) { o[d][0] *= a0; o[d][1] *= a0; o[d][2] *= a1; o[d][3] *= a1; }

                // P as A fragments: the accumulator layout of two adjacent n-tiles is the A layout of one k-step.
                uint32_t pf[2][4];
#pragma unroll
                for (int j = 0; j < 4; j++)
                {
                    float p0 = fast_exp2(fmaf(s[j][0], scale_log2, -ms0)), p1 = fast_exp2(fmaf(s[j][1], scale_log2, -ms0));
                    float p2 = fast_exp2(fmaf(s[j][2], scale_log2, -ms1)), p3 = fast_exp2(fmaf(s[j][3], scale_log2, -ms1));
                    l0 += p0 + p1; l1 += p2 + p3;
                    pf[j >> 1][(j & 1) * 2 + 0] = pack_bf16x2(p0, p1);
                    pf[j >> 1][(j & 1) * 2 + 1] = pack_bf16x2(p2, p3);
                }
#pragma unroll
                for (int kk = 0; kk < 2; kk++)
                {
                    if (kb + kk * 16 >= valid) break;
                    uint32_t addr = smem_addr(&Vs[buf][(kb + kk * 16 + (lane & 15)) * STR]);
#pragma unroll
                    for (int d = 0; d < DT; d++)
                    {
                        uint32_t b0, b1;
                        // V rows are keys; the transposing load hands each thread V[2·t4 (+1)][g] of an 8×8 block:
                        // the B layout.
                        ldmatrix_trans_b(b0, b1, addr + d * 16);
                        mma_bf16(o[d], pf[kk], b0, b1);
                    }
                }
            }
        }
        __syncthreads(); // this buffer is refilled two tiles from now
    }
    if (!active) return;
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    float i0 = 1.f / l0, i1 = 1.f / l1;
    long ow = (long)heads * HD;
    if (lse != nullptr && t4 == 0)
    {
        // The training forward keeps each row's log2-sum-exp2 of the scaled scores: P = exp2(s·scale_log2 − lse).
        long lr = ((long)b * heads + h) * n;
        if (r0 < n) lse[lr + r0] = m0 * scale_log2 + log2f(l0);
        if (r1 < n) lse[lr + r1] = m1 * scale_log2 + log2f(l1);
    }
#pragma unroll
    for (int d = 0; d < DT; d++)
    {
        int c = h * HD + d * 8 + t4 * 2;
        if (r0 < n) *(uint32_t*)(y + ((long)b * n + r0) * ow + c) = pack_bf16x2(o[d][0] * i0, o[d][1] * i0);
        if (r1 < n) *(uint32_t*)(y + ((long)b * n + r1) * ow + c) = pack_bf16x2(o[d][2] * i1, o[d][3] * i1);
    }
}

// Two block shapes: 4 warps (64 queries) or 8 warps (128 queries: K/V tiles read half as often; the default, ~4%
// faster on ViT-B/16). Capping registers for 24 warps per multiprocessor (launch bounds) spilled and gained nothing.
#define VS_FLASH(HD, BK, W) \
extern "C" __global__ void __launch_bounds__(W * 32) flash_attn_bf16_hd##HD##_w##W(const unsigned short* qkv, unsigned short* y, \
    int n, int heads, float scale_log2) { flash_attn_bf16_impl<HD, BK, W>(qkv, y, n, heads, scale_log2); }
#define VS_FLASH_ALL(HD, BK) VS_FLASH(HD, BK, 4) VS_FLASH(HD, BK, 8)
VS_FLASH_ALL(32, 64)
VS_FLASH_ALL(64, 64)
VS_FLASH_ALL(80, 64)
VS_FLASH_ALL(128, 32)

// ---- Training: flash-attention forward with log-sum-exp, and its backward (FlashAttention-2, Dao 2023) ----
// The forward above, also writing lse (B, H, N) fp32 in log2 units. The backward recomputes P = exp2(s·scale_log2 − lse)
// tile by tile, so neither P nor dP reaches device memory, in three kernels with no atomics (deterministic):
//   attn_bwd_dot_bf16:   D[b, h, i] = Σ_d dO[i, d]·O[i, d] (the softmax backward's row term);
//   flash_bwd_dq_*:      a warp per 16 query rows (the forward's shape): S = Q·Kᵀ, dP = dO·Vᵀ, dS = P∘(dP − D),
//                        dQ = scale·dS·K over all key tiles;
//   flash_bwd_dkv_*:     a warp per 16 key rows, query tiles streamed: Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, dSᵀ = Pᵀ∘(dPᵀ − D),
//                        dV = Pᵀ·dO, dK = scale·dSᵀ·Q.
// dq/dk/dv are written straight into dqkv's (B, N, 3, H, hd) layout. P and dS enter the tensor cores as bf16.
extern "C" __global__ void __launch_bounds__(128) flash_attn_fwd_lse_bf16_hd64_w4(const unsigned short* qkv, unsigned short* y,
    float* lse, int n, int heads, float scale_log2) { flash_attn_bf16_impl<64, 64, 4>(qkv, y, n, heads, scale_log2, lse); }

extern "C" __global__ void attn_bwd_dot_bf16(const unsigned short* __restrict__ dy, const unsigned short* __restrict__ y,
                                             float* __restrict__ dsum, int n, int heads, int hd, long rows)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x; // i = (b·n + row)·heads + h
    if (i >= rows) return;
    long tok = i / heads;
    int h = (int)(i % heads);
    long b = tok / n;
    int row = (int)(tok % n);
    const unsigned short* a = dy + i * hd;
    const unsigned short* o = y + i * hd;
    float s = 0.f;
    for (int c = 0; c < hd; c += 8)
    {
        float u[8], v[8];
        load8((const bf16*)(a + c), u);
        load8((const bf16*)(o + c), v);
#pragma unroll
        for (int k = 0; k < 8; k++) s = fmaf(u[k], v[k], s);
    }
    dsum[(b * heads + h) * n + row] = s;
}

template <int HD, int BK, int WARPS>
__device__ void flash_bwd_dq_impl(const unsigned short* __restrict__ qkv, const unsigned short* __restrict__ dy,
                                  const float* __restrict__ lse, const float* __restrict__ dsum, unsigned short* __restrict__ dqkv,
                                  int n, int heads, float scale_log2, float scale)
{
    constexpr int BQ = WARPS * 16, STR = HD + 8, KS = HD / 16, DT = HD / 8;
    __shared__ __align__(16) unsigned short Ks[2][BK * STR];
    __shared__ __align__(16) unsigned short Vs[2][BK * STR];
    int h = blockIdx.y, b = blockIdx.z;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    long rs = 3L * heads * HD, ow = (long)heads * HD;
    const unsigned short* base = qkv + (long)b * n * rs + h * HD;
    const unsigned short* Kg = base + ow;
    const unsigned short* Vg = base + 2 * ow;
    const unsigned short* dOg = dy + (long)b * n * ow + h * HD;
    int r0 = blockIdx.x * BQ + warp * 16 + g, r1 = r0 + 8;
    bool active = blockIdx.x * BQ + warp * 16 < n;

    uint32_t qf[KS][4], df[KS][4];
    load_a_frags<KS>(qf, base, rs, r0, r1, n, t4);
    load_a_frags<KS>(df, dOg, ow, r0, r1, n, t4);
    long lr = ((long)b * heads + h) * n;
    float L0 = r0 < n ? lse[lr + r0] : 0.f, L1 = r1 < n ? lse[lr + r1] : 0.f;
    float D0 = r0 < n ? dsum[lr + r0] : 0.f, D1 = r1 < n ? dsum[lr + r1] : 0.f;
    float dq[DT][4];
#pragma unroll
    for (int d = 0; d < DT; d++) dq[d][0] = dq[d][1] = dq[d][2] = dq[d][3] = 0.f;

    auto load_tile = [&](int k0, int buf)
    {
        load_tile_pair<BK, HD, STR>(Ks[buf], Vs[buf], Kg, rs, Vg, rs, k0, n);
        asm volatile("cp.async.commit_group;");
    };

    int tiles = (n + BK - 1) / BK;
    load_tile(0, 0);
    for (int t = 0; t < tiles; t++)
    {
        int k0 = t * BK, buf = t & 1, valid = n - k0;
        if (t + 1 < tiles) { load_tile(k0 + BK, buf ^ 1); asm volatile("cp.async.wait_group 1;"); }
        else asm volatile("cp.async.wait_group 0;");
        __syncthreads();
        if (active)
        {
#pragma unroll
            for (int kb = 0; kb < BK; kb += 32)
            {
                if (kb >= valid) break;
                float s[4][4], dp[4][4];
                chunk_products<KS, STR>(s, qf, Ks[buf], kb, valid, g, t4);
                chunk_products<KS, STR>(dp, df, Vs[buf], kb, valid, g, t4);
                if (valid < kb + 32) mask_keys(s, kb, valid, t4);
                uint32_t sf[2][4];
#pragma unroll
                for (int j = 0; j < 4; j++)
                {
                    float p0 = fast_exp2(fmaf(s[j][0], scale_log2, -L0)), p1 = fast_exp2(fmaf(s[j][1], scale_log2, -L0));
                    float p2 = fast_exp2(fmaf(s[j][2], scale_log2, -L1)), p3 = fast_exp2(fmaf(s[j][3], scale_log2, -L1));
                    sf[j >> 1][(j & 1) * 2 + 0] = pack_bf16x2(p0 * (dp[j][0] - D0), p1 * (dp[j][1] - D0));
                    sf[j >> 1][(j & 1) * 2 + 1] = pack_bf16x2(p2 * (dp[j][2] - D1), p3 * (dp[j][3] - D1));
                }
#pragma unroll
                for (int kk = 0; kk < 2; kk++)
                {
                    if (kb + kk * 16 >= valid) break;
                    uint32_t addr = smem_addr(&Ks[buf][(kb + kk * 16 + (lane & 15)) * STR]);
#pragma unroll
                    for (int d = 0; d < DT; d++)
                    {
                        uint32_t b0, b1;
                        ldmatrix_trans_b(b0, b1, addr + d * 16);
                        mma_bf16(dq[d], sf[kk], b0, b1);
                    }
                }
            }
        }
        __syncthreads();
    }
    if (!active) return;
#pragma unroll
    for (int d = 0; d < DT; d++)
    {
        int c = h * HD + d * 8 + t4 * 2;
        if (r0 < n) *(uint32_t*)(dqkv + ((long)b * n + r0) * rs + c) = pack_bf16x2(dq[d][0] * scale, dq[d][1] * scale);
        if (r1 < n) *(uint32_t*)(dqkv + ((long)b * n + r1) * rs + c) = pack_bf16x2(dq[d][2] * scale, dq[d][3] * scale);
    }
}

template <int HD, int BQT, int WARPS>
__device__ void flash_bwd_dkv_impl(const unsigned short* __restrict__ qkv, const unsigned short* __restrict__ dy,
                                   const float* __restrict__ lse, const float* __restrict__ dsum, unsigned short* __restrict__ dqkv,
                                   int n, int heads, float scale_log2, float scale)
{
    constexpr int BKW = WARPS * 16, STR = HD + 8, KS = HD / 16, DT = HD / 8;
    __shared__ __align__(16) unsigned short Qs[2][BQT * STR];
    __shared__ __align__(16) unsigned short Os[2][BQT * STR]; // dO
    __shared__ float Ls[2][BQT], Ds[2][BQT];
    int h = blockIdx.y, b = blockIdx.z;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    long rs = 3L * heads * HD, ow = (long)heads * HD;
    const unsigned short* Qg = qkv + (long)b * n * rs + h * HD;
    const unsigned short* Kg = Qg + ow;
    const unsigned short* Vg = Qg + 2 * ow;
    const unsigned short* dOg = dy + (long)b * n * ow + h * HD;
    int r0 = blockIdx.x * BKW + warp * 16 + g, r1 = r0 + 8; // this thread's key rows
    bool active = blockIdx.x * BKW + warp * 16 < n;

    uint32_t kf[KS][4], vf[KS][4];
    load_a_frags<KS>(kf, Kg, rs, r0, r1, n, t4);
    load_a_frags<KS>(vf, Vg, rs, r0, r1, n, t4);
    float dk[DT][4], dv[DT][4];
#pragma unroll
    for (int d = 0; d < DT; d++)
    {
        dk[d][0] = dk[d][1] = dk[d][2] = dk[d][3] = 0.f;
        dv[d][0] = dv[d][1] = dv[d][2] = dv[d][3] = 0.f;
    }
    long lr = ((long)b * heads + h) * n;

    auto load_tile = [&](int q0, int buf)
    {
        load_tile_pair<BQT, HD, STR>(Qs[buf], Os[buf], Qg, rs, dOg, ow, q0, n);
        // Queries past N: lse = +∞ makes their P (and so dS) exactly 0.
        for (int i = threadIdx.x; i < BQT; i += blockDim.x)
        {
            bool ok = q0 + i < n;
            Ls[buf][i] = ok ? lse[lr + q0 + i] : VS_INF;
            Ds[buf][i] = ok ? dsum[lr + q0 + i] : 0.f;
        }
        asm volatile("cp.async.commit_group;");
    };

    int tiles = (n + BQT - 1) / BQT;
    load_tile(0, 0);
    for (int t = 0; t < tiles; t++)
    {
        int q0 = t * BQT, buf = t & 1, valid = n - q0;
        if (t + 1 < tiles) { load_tile(q0 + BQT, buf ^ 1); asm volatile("cp.async.wait_group 1;"); }
        else asm volatile("cp.async.wait_group 0;");
        __syncthreads();
        if (active)
        {
#pragma unroll
            for (int qb = 0; qb < BQT; qb += 32)
            {
                if (qb >= valid) break;
                float st[4][4], dpt[4][4];
                chunk_products<KS, STR>(st, kf, Qs[buf], qb, valid, g, t4);
                chunk_products<KS, STR>(dpt, vf, Os[buf], qb, valid, g, t4);
                uint32_t pf[2][4], sf[2][4];
#pragma unroll
                for (int j = 0; j < 4; j++)
                {
                    int q = qb + j * 8 + t4 * 2;
                    float La = Ls[buf][q], Lb = Ls[buf][q + 1], Da = Ds[buf][q], Db = Ds[buf][q + 1];
                    // rows g, g+8 are keys; columns q, q+1 are queries
                    float p0 = fast_exp2(fmaf(st[j][0], scale_log2, -La)), p1 = fast_exp2(fmaf(st[j][1], scale_log2, -Lb));
                    float p2 = fast_exp2(fmaf(st[j][2], scale_log2, -La)), p3 = fast_exp2(fmaf(st[j][3], scale_log2, -Lb));
                    pf[j >> 1][(j & 1) * 2 + 0] = pack_bf16x2(p0, p1);
                    pf[j >> 1][(j & 1) * 2 + 1] = pack_bf16x2(p2, p3);
                    sf[j >> 1][(j & 1) * 2 + 0] = pack_bf16x2(p0 * (dpt[j][0] - Da), p1 * (dpt[j][1] - Db));
                    sf[j >> 1][(j & 1) * 2 + 1] = pack_bf16x2(p2 * (dpt[j][2] - Da), p3 * (dpt[j][3] - Db));
                }
#pragma unroll
                for (int kk = 0; kk < 2; kk++)
                {
                    if (qb + kk * 16 >= valid) break;
                    uint32_t ao = smem_addr(&Os[buf][(qb + kk * 16 + (lane & 15)) * STR]);
                    uint32_t aq = smem_addr(&Qs[buf][(qb + kk * 16 + (lane & 15)) * STR]);
#pragma unroll
                    for (int d = 0; d < DT; d++)
                    {
                        uint32_t b0, b1, c0, c1;
                        ldmatrix_trans_b(b0, b1, ao + d * 16);
                        mma_bf16(dv[d], pf[kk], b0, b1);
                        ldmatrix_trans_b(c0, c1, aq + d * 16);
                        mma_bf16(dk[d], sf[kk], c0, c1);
                    }
                }
            }
        }
        __syncthreads();
    }
    if (!active) return;
#pragma unroll
    for (int d = 0; d < DT; d++)
    {
        int c = h * HD + d * 8 + t4 * 2;
        if (r0 < n)
        {
            unsigned short* row = dqkv + ((long)b * n + r0) * rs + c;
            *(uint32_t*)(row + ow) = pack_bf16x2(dk[d][0] * scale, dk[d][1] * scale);
            *(uint32_t*)(row + 2 * ow) = pack_bf16x2(dv[d][0], dv[d][1]);
        }
        if (r1 < n)
        {
            unsigned short* row = dqkv + ((long)b * n + r1) * rs + c;
            *(uint32_t*)(row + ow) = pack_bf16x2(dk[d][2] * scale, dk[d][3] * scale);
            *(uint32_t*)(row + 2 * ow) = pack_bf16x2(dv[d][2], dv[d][3]);
        }
    }
}

extern "C" __global__ void __launch_bounds__(128) flash_bwd_dq_bf16_hd64_w4(const unsigned short* qkv, const unsigned short* dy,
    const float* lse, const float* dsum, unsigned short* dqkv, int n, int heads, float scale_log2, float scale)
{ flash_bwd_dq_impl<64, 64, 4>(qkv, dy, lse, dsum, dqkv, n, heads, scale_log2, scale); }

extern "C" __global__ void __launch_bounds__(128) flash_bwd_dkv_bf16_hd64_w4(const unsigned short* qkv, const unsigned short* dy,
    const float* lse, const float* dsum, unsigned short* dqkv, int n, int heads, float scale_log2, float scale)
{ flash_bwd_dkv_impl<64, 64, 4>(qkv, dy, lse, dsum, dqkv, n, heads, scale_log2, scale); }

// Dynamic shared memory: 32×hd queries (pre-scaled), 32×(hd+1) keys (padded: lane j reads row j without bank
// conflicts), 32×hd values, as floats.
template <typename T>
__device__ void attention_tiled_impl(const T* qkv, T* y, int n, int heads, int hd, float scale)
{
    constexpr int QW = 8, BQ = 4 * QW, BK = 32;
    extern __shared__ float sm[];
    int ks = hd + 1;
    float* Qs = sm;
    float* Ks = Qs + BQ * hd;
    float* Vs = Ks + BK * ks;
    int h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * BQ;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    long rs = 3L * heads * hd;
    const T* base = qkv + (long)b * n * rs + h * hd;
    for (int i = threadIdx.x; i < BQ * hd; i += blockDim.x)
    {
        int r = i / hd, c = i - r * hd;
        Qs[i] = q0 + r < n ? to_f(base[(long)(q0 + r) * rs + c]) * scale : 0.f;
    }
    float m[QW], l[QW], o[QW][4];
#pragma unroll
    for (int qi = 0; qi < QW; qi++)
    {
        m[qi] = -VS_INF; l[qi] = 0.f;
#pragma unroll
        for (int e = 0; e < 4; e++) o[qi][e] = 0.f;
    }
    for (int k0 = 0; k0 < n; k0 += BK)
    {
        __syncthreads();
        for (int i = threadIdx.x; i < BK * hd; i += blockDim.x)
        {
            int r = i / hd, c = i - r * hd;
            bool ok = k0 + r < n;
            const T* row = base + (long)(k0 + r) * rs;
            Ks[r * ks + c] = ok ? to_f(row[(long)heads * hd + c]) : 0.f;
            Vs[r * hd + c] = ok ? to_f(row[2L * heads * hd + c]) : 0.f;
        }
        __syncthreads();
        bool valid = k0 + lane < n;
        int kmax = min(BK, n - k0);
#pragma unroll
        for (int qi = 0; qi < QW; qi++)
        {
            const float* q = Qs + (warp * QW + qi) * hd;
            const float* kr = Ks + lane * ks;
            float sc = 0.f;
            for (int c = 0; c < hd; c++) sc += q[c] * kr[c];
            sc = valid ? sc : -VS_INF;
            float mx = fmaxf(m[qi], warp_max(sc)); // finite: every tile holds a valid key
            float a = expf(m[qi] - mx), p = expf(sc - mx);
            l[qi] = l[qi] * a + warp_sum(p);
            m[qi] = mx;
#pragma unroll
            for (int e = 0; e < 4; e++) o[qi][e] *= a;
            for (int j = 0; j < kmax; j++)
            {
                float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (lane + 32 * e < hd) o[qi][e] += pj * Vs[j * hd + lane + 32 * e];
            }
        }
    }
#pragma unroll
    for (int qi = 0; qi < QW; qi++)
    {
        int row = q0 + warp * QW + qi;
        if (row >= n) continue;
        T* yr = y + ((long)b * n + row) * heads * hd + h * hd;
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (lane + 32 * e < hd) yr[lane + 32 * e] = from_f<T>(o[qi][e] / l[qi]);
    }
}

extern "C" __global__ void __launch_bounds__(128) attention_tiled_f32(const float* qkv, float* y, int n, int heads, int hd, float scale)
    { attention_tiled_impl(qkv, y, n, heads, hd, scale); }
extern "C" __global__ void __launch_bounds__(128) attention_tiled_bf16(const bf16* qkv, bf16* y, int n, int heads, int hd, float scale)
    { attention_tiled_impl(qkv, y, n, heads, hd, scale); }

// Dynamic shared memory: n scores + hd query values (floats).
template <typename T>
__device__ void attention_generic_impl(const T* qkv, T* y, float* probs, int n, int heads, int hd, float scale)
{
    extern __shared__ float sm[];
    __shared__ float scratch[32];
    float* sc = sm;
    float* q = sm + n;
    int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    long rs = 3L * heads * hd;
    const T* base = qkv + (long)b * n * rs + h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) q[d] = to_f(base[i * rs + d]);
    __syncthreads();
    float mx = -VS_INF;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
    {
        const T* kj = base + j * rs + (long)heads * hd;
        float s = 0.f;
        for (int d = 0; d < hd; d++) s += q[d] * to_f(kj[d]);
        s *= scale;
        sc[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_reduce(mx, scratch, true);
    float sum = 0.f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) { float p = expf(sc[j] - mx); sc[j] = p; sum += p; }
    float inv = 1.f / block_reduce(sum, scratch, false); // its barriers also publish sc[]
    if (probs)
        for (int j = threadIdx.x; j < n; j += blockDim.x) probs[(((long)b * heads + h) * n + i) * n + j] = sc[j] * inv;
    const T* v = base + 2L * heads * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x)
    {
        float acc = 0.f;
        for (int j = 0; j < n; j++) acc += sc[j] * to_f(v[j * rs + d]);
        y[((long)b * n + i) * heads * hd + h * hd + d] = from_f<T>(acc * inv);
    }
}

extern "C" __global__ void attention_generic_f32(const float* qkv, float* y, float* probs, int n, int heads, int hd, float scale)
    { attention_generic_impl(qkv, y, probs, n, heads, hd, scale); }
extern "C" __global__ void attention_generic_bf16(const bf16* qkv, bf16* y, float* probs, int n, int heads, int hd, float scale)
    { attention_generic_impl(qkv, y, probs, n, heads, hd, scale); }
