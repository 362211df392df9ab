// Paged causal GQA attention for prefill and decode alike: every new row r attends to
// positions 0..=positions[r] of its own sequence, reading K and V from the pages of its block
// table (layout of kernels/src/cpu/mod.rs). A prefill row and a decode row differ only in how
// many positions they see, so one kernel serves batches that mix both.
//
// Grid (rows, heads), ATTN_WARPS warps per block. Warp w takes positions w, w + ATTN_WARPS, ...
// and keeps an online softmax (running max, sum and weighted V) with HEAD_DIM / 32 values per
// lane; the warps' partial results are merged through shared memory. HEAD_DIM is a
// compile-time constant (-DHEAD_DIM=...), a multiple of 32.

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined"
#endif
#if HEAD_DIM % 32 != 0
#error "HEAD_DIM must be a multiple of 32"
#endif
#define ATTN_WARPS 4
#define ATTN_PER_LANE (HEAD_DIM / 32)

extern "C" __global__ void __launch_bounds__(ATTN_WARPS * 32)
paged_attention(const float* __restrict__ q, const float* __restrict__ pool,
                const unsigned int* __restrict__ positions,
                const unsigned int* __restrict__ table_start,
                const unsigned int* __restrict__ tables, float* __restrict__ out,
                unsigned int layer, unsigned int block_tokens, unsigned long long page_floats,
                unsigned int heads, unsigned int kv_heads)
{
    __shared__ float part_m[ATTN_WARPS], part_l[ATTN_WARPS];
    __shared__ float part_acc[ATTN_WARPS][HEAD_DIM];
    unsigned int r = blockIdx.x, head = blockIdx.y;
    unsigned int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned int kv_dim = kv_heads * HEAD_DIM;
    unsigned int g = head / (heads / kv_heads) * HEAD_DIM;
    unsigned int len = positions[r] + 1;
    const unsigned int* table = tables + table_start[r];
    const float* qh = q + (unsigned long long)r * heads * HEAD_DIM + head * HEAD_DIM;
    float scale = 1.f / sqrtf((float)HEAD_DIM);
    float qv[ATTN_PER_LANE], acc[ATTN_PER_LANE];
#pragma unroll
    for (int i = 0; i < ATTN_PER_LANE; ++i) {
        qv[i] = qh[lane + 32 * i];
        acc[i] = 0.f;
    }
    float m = __int_as_float(0xff800000), l = 0.f;  // -inf
    unsigned long long k_off = ((unsigned long long)(layer * 2) * block_tokens) * kv_dim + g;
    unsigned long long v_off = ((unsigned long long)(layer * 2 + 1) * block_tokens) * kv_dim + g;
    for (unsigned int t = warp; t < len; t += ATTN_WARPS) {
        const float* page = pool + (unsigned long long)table[t / block_tokens] * page_floats;
        unsigned long long slot = (unsigned long long)(t % block_tokens) * kv_dim;
        const float* kp = page + k_off + slot;
        const float* vp = page + v_off + slot;
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < ATTN_PER_LANE; ++i) dot += qv[i] * kp[lane + 32 * i];
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        float s = dot * scale;
        float m_new = fmaxf(m, s);
        float corr = expf(m - m_new), p = expf(s - m_new);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < ATTN_PER_LANE; ++i) acc[i] = acc[i] * corr + p * vp[lane + 32 * i];
        m = m_new;
    }
    if (lane == 0) {
        part_m[warp] = m;
        part_l[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < ATTN_PER_LANE; ++i) part_acc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    if (warp != 0) return;
    float big = part_m[0];
    for (int w = 1; w < ATTN_WARPS; ++w) big = fmaxf(big, part_m[w]);
    float total = 0.f, o[ATTN_PER_LANE];
#pragma unroll
    for (int i = 0; i < ATTN_PER_LANE; ++i) o[i] = 0.f;
    for (int w = 0; w < ATTN_WARPS; ++w) {
        // A warp that saw no position has m = -inf and l = 0: its weight is exactly zero.
        float wgt = part_l[w] > 0.f ? expf(part_m[w] - big) : 0.f;
        total += part_l[w] * wgt;
#pragma unroll
        for (int i = 0; i < ATTN_PER_LANE; ++i) o[i] += part_acc[w][lane + 32 * i] * wgt;
    }
    float* oh = out + (unsigned long long)r * heads * HEAD_DIM + head * HEAD_DIM;
#pragma unroll
    for (int i = 0; i < ATTN_PER_LANE; ++i) oh[lane + 32 * i] = o[i] / total;
}
