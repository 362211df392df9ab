// LoRA shrink and expand over adapter weights that live in pages of the shared pool
// (S-LoRA's unified paging), for a batch that mixes adapters: each row names its adapter slot
// (or -1 for the base model), BGMV style. An adapter's pages hold its f32 stream in the
// slice-major layout of kernels/src/peft/paged.rs: rank slice j = per layer, per target,
// A[j, 0..in] then B[0..out, j]; element e of the stream lies in page
// tables[ad_table[a] + e / page_floats] at offset e % page_floats.
//
// `target_off` is the offset of (layer, target) inside one slice; `slice_floats` the size of
// a slice; `max_rank` the row stride of `down`.

__device__ __forceinline__ float lora_at(const float* __restrict__ pool,
                                         const unsigned int* __restrict__ table,
                                         unsigned long long page_floats, unsigned long long e)
{
    return pool[(unsigned long long)table[e / page_floats] * page_floats + e % page_floats];
}

// down[r, j] = scale_a * sum_i x[r, i] * A_a[j, i]. Grid (rows, max_rank), 128 threads.
extern "C" __global__ void __launch_bounds__(128)
lora_shrink(const float* __restrict__ x, const float* __restrict__ pool,
            const int* __restrict__ row_adapter, const unsigned int* __restrict__ ad_rank,
            const float* __restrict__ ad_scale, const unsigned int* __restrict__ ad_table,
            const unsigned int* __restrict__ tables, float* __restrict__ down,
            unsigned int in_width, unsigned int max_rank, unsigned long long slice_floats,
            unsigned long long target_off, unsigned long long page_floats)
{
    __shared__ float partial[4];
    unsigned int r = blockIdx.x, j = blockIdx.y;
    int a = row_adapter[r];
    float* dst = down + (unsigned long long)r * max_rank + j;
    if (a < 0 || j >= ad_rank[a]) {
        if (threadIdx.x == 0) *dst = 0.f;
        return;
    }
    const unsigned int* table = tables + ad_table[a];
    unsigned long long base = j * slice_floats + target_off;
    const float* xr = x + (unsigned long long)r * in_width;
    float sum = 0.f;
    for (unsigned int i = threadIdx.x; i < in_width; i += blockDim.x)
        sum += xr[i] * lora_at(pool, table, page_floats, base + i);
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0)
        *dst = (partial[0] + partial[1] + partial[2] + partial[3]) * ad_scale[a];
}

// out[r, o] += sum_j down[r, j] * B_a[o, j]. Grid (rows, ceil(out_width / 128)), 128 threads;
// `target_off` here points at B of (layer, target), i.e. past A's `in` floats.
extern "C" __global__ void __launch_bounds__(128)
lora_expand(const float* __restrict__ down, const float* __restrict__ pool,
            const int* __restrict__ row_adapter, const unsigned int* __restrict__ ad_rank,
            const unsigned int* __restrict__ ad_table, const unsigned int* __restrict__ tables,
            float* __restrict__ out, unsigned int out_width, unsigned int max_rank,
            unsigned long long slice_floats, unsigned long long target_off,
            unsigned long long page_floats)
{
    unsigned int r = blockIdx.x, o = blockIdx.y * blockDim.x + threadIdx.x;
    int a = row_adapter[r];
    if (a < 0 || o >= out_width) return;
    const unsigned int* table = tables + ad_table[a];
    const float* dr = down + (unsigned long long)r * max_rank;
    float sum = 0.f;
    for (unsigned int j = 0; j < ad_rank[a]; ++j)
        sum += dr[j] * lora_at(pool, table, page_floats, j * slice_floats + target_off + o);
    out[(unsigned long long)r * out_width + o] += sum;
}
