// Batched page gather and scatter between the page pool and a contiguous staging buffer.
// A page is `page_vec4` float4 values (page floats must be a multiple of 4; the pool and the
// staging buffer are 256-byte aligned allocations). One block per listed page, threads stride
// over the page, so a launch moves any number of scattered pages in one go.

extern "C" __global__ void __launch_bounds__(256)
gather_pages(const float4* __restrict__ pool, const unsigned int* __restrict__ pages,
             float4* __restrict__ staging, unsigned int n_pages, unsigned long long page_vec4)
{
    unsigned int i = blockIdx.x;
    if (i >= n_pages) return;
    const float4* src = pool + (unsigned long long)pages[i] * page_vec4;
    float4* dst = staging + (unsigned long long)i * page_vec4;
    for (unsigned long long e = threadIdx.x; e < page_vec4; e += blockDim.x) dst[e] = src[e];
}

extern "C" __global__ void __launch_bounds__(256)
scatter_pages(const float4* __restrict__ staging, const unsigned int* __restrict__ pages,
              float4* __restrict__ pool, unsigned int n_pages, unsigned long long page_vec4)
{
    unsigned int i = blockIdx.x;
    if (i >= n_pages) return;
    const float4* src = staging + (unsigned long long)i * page_vec4;
    float4* dst = pool + (unsigned long long)pages[i] * page_vec4;
    for (unsigned long long e = threadIdx.x; e < page_vec4; e += blockDim.x) dst[e] = src[e];
}

// Fills `n` floats with `value` (used to poison outputs with NaN before a checked run).
extern "C" __global__ void __launch_bounds__(256)
fill_f32(float* __restrict__ out, unsigned long long n, float value)
{
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += stride)
        out[i] = value;
}
