// The element-wise and row-wise parts of a decoder layer, in the CPU reference's arithmetic
// (kernels/src/cpu/ops.rs): row gather (embeddings, last rows), RMSNorm, RoPE, SwiGLU, and the
// write of new K and V into their pages (layout of kernels/src/cpu/mod.rs).

// out[r] = table[idx[r]] for rows of `width` floats.
extern "C" __global__ void __launch_bounds__(256)
gather_rows(const float* __restrict__ table, const unsigned int* __restrict__ idx,
            float* __restrict__ out, unsigned int width)
{
    unsigned int r = blockIdx.x;
    const float* src = table + (unsigned long long)idx[r] * width;
    for (unsigned int e = threadIdx.x; e < width; e += blockDim.x)
        out[(unsigned long long)r * width + e] = src[e];
}

// One block of 256 threads per row: out = x / sqrt(mean(x^2) + eps) * weight.
extern "C" __global__ void __launch_bounds__(256)
rms_norm(const float* __restrict__ x, const float* __restrict__ weight, float* __restrict__ out,
         unsigned int width, float eps)
{
    __shared__ float partial[8];
    const float* row = x + (unsigned long long)blockIdx.x * width;
    float sum = 0.f;
    for (unsigned int e = threadIdx.x; e < width; e += blockDim.x) sum += row[e] * row[e];
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = sum;
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < 8; ++w) total += partial[w];
    float inv = 1.f / sqrtf(total / (float)width + eps);
    float* dst = out + (unsigned long long)blockIdx.x * width;
    for (unsigned int e = threadIdx.x; e < width; e += blockDim.x) dst[e] = row[e] * inv * weight[e];
}

// Rotate-half RoPE in place on `rows` vectors of `heads` heads of `head_dim`, row r at
// position positions[r]; pair i of a head turns by pos * theta^(-2i/head_dim), computed in
// double like the reference table.
extern "C" __global__ void __launch_bounds__(128)
rope(float* __restrict__ x, const unsigned int* __restrict__ positions, unsigned int heads,
     unsigned int head_dim, float theta)
{
    unsigned int r = blockIdx.x, half = head_dim / 2;
    double pos = (double)positions[r];
    float* row = x + (unsigned long long)r * heads * head_dim;
    for (unsigned int p = threadIdx.x; p < heads * half; p += blockDim.x) {
        unsigned int h = p / half, i = p % half;
        double angle = pos * pow((double)theta, -(double)(2 * i) / (double)head_dim);
        float c = (float)cos(angle), s = (float)sin(angle);
        float* head = row + h * head_dim;
        float x0 = head[i], x1 = head[i + half];
        head[i] = x0 * c - x1 * s;
        head[i + half] = x1 * c + x0 * s;
    }
}

// gate = silu(gate) * up, element-wise over n floats.
extern "C" __global__ void __launch_bounds__(256)
swiglu(float* __restrict__ gate, const float* __restrict__ up, unsigned long long n)
{
    unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
    if (i < n) {
        float g = gate[i];
        gate[i] = g / (1.f + expf(-g)) * up[i];
    }
}

// Writes row r's K and V of `layer` (kv_dim floats each) into the page of its position:
// page = tables[table_start[r] + pos / block_tokens], slot = pos % block_tokens,
// offset = page * page_floats + ((layer * 2 + which) * block_tokens + slot) * kv_dim.
extern "C" __global__ void __launch_bounds__(128)
write_kv(const float* __restrict__ k, const float* __restrict__ v, float* __restrict__ pool,
         const unsigned int* __restrict__ positions, const unsigned int* __restrict__ table_start,
         const unsigned int* __restrict__ tables, unsigned int layer, unsigned int block_tokens,
         unsigned long long page_floats, unsigned int kv_dim)
{
    unsigned int r = blockIdx.x, pos = positions[r];
    unsigned long long page = tables[table_start[r] + pos / block_tokens];
    unsigned int slot = pos % block_tokens;
    float* base = pool + page * page_floats;
    float* kd = base + ((unsigned long long)(layer * 2 + 0) * block_tokens + slot) * kv_dim;
    float* vd = base + ((unsigned long long)(layer * 2 + 1) * block_tokens + slot) * kv_dim;
    for (unsigned int e = threadIdx.x; e < kv_dim; e += blockDim.x) {
        kd[e] = k[(unsigned long long)r * kv_dim + e];
        vd[e] = v[(unsigned long long)r * kv_dim + e];
    }
}
