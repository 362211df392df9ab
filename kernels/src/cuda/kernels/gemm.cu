// c (+)= a · b with a of m×k, b of k×n and c of m×n, all row-major. Tiles of 64×64
// outputs per block of 256 threads, 4×4 outputs per thread at a stride of 16 rows / columns
// (conflict-free shared memory reads), k in steps of 16; each output sums k in index order.
// `gemm`: everything fp32. `gemm_bf16w`: b (the weights) in bf16, widened to fp32 as it is
// loaded into shared memory; a, c and the sums stay fp32.

#define GEMM_TM 64
#define GEMM_TN 64
#define GEMM_TK 16

__device__ __forceinline__ float gemm_load_b(const float* b, unsigned long long i)
{
    return b[i];
}

// bf16 is the top half of an fp32: widening is a shift.
__device__ __forceinline__ float gemm_load_b(const unsigned short* b, unsigned long long i)
{
    return __uint_as_float(((unsigned int)b[i]) << 16);
}

template <typename B>
__device__ __forceinline__ void gemm_tile(const float* __restrict__ a, const B* __restrict__ b,
                                          float* __restrict__ c, unsigned int m, unsigned int n,
                                          unsigned int k, int accumulate)
{
    __shared__ float as[GEMM_TK][GEMM_TM + 1];
    __shared__ float bs[GEMM_TK][GEMM_TN + 1];
    unsigned int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    unsigned int row0 = blockIdx.y * GEMM_TM, col0 = blockIdx.x * GEMM_TN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    for (unsigned int k0 = 0; k0 < k; k0 += GEMM_TK) {
        for (unsigned int t = threadIdx.x; t < GEMM_TM * GEMM_TK; t += 256) {
            unsigned int r = t / GEMM_TK, kk = t % GEMM_TK;
            unsigned int gr = row0 + r, gk = k0 + kk;
            as[kk][r] = (gr < m && gk < k) ? a[(unsigned long long)gr * k + gk] : 0.f;
        }
        for (unsigned int t = threadIdx.x; t < GEMM_TK * GEMM_TN; t += 256) {
            unsigned int kk = t / GEMM_TN, cc = t % GEMM_TN;
            unsigned int gk = k0 + kk, gc = col0 + cc;
            bs[kk][cc] = (gk < k && gc < n) ? gemm_load_b(b, (unsigned long long)gk * n + gc) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM_TK; ++kk) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) av[i] = as[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) bv[j] = bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        unsigned int r = row0 + ty + 16 * i;
        if (r >= m) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            unsigned int col = col0 + tx + 16 * j;
            if (col >= n) continue;
            float* out = c + (unsigned long long)r * n + col;
            *out = accumulate ? *out + acc[i][j] : acc[i][j];
        }
    }
}

extern "C" __global__ void __launch_bounds__(256)
gemm(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
     unsigned int m, unsigned int n, unsigned int k, int accumulate)
{
    gemm_tile(a, b, c, m, n, k, accumulate);
}

extern "C" __global__ void __launch_bounds__(256)
gemm_bf16w(const float* __restrict__ a, const unsigned short* __restrict__ b,
           float* __restrict__ c, unsigned int m, unsigned int n, unsigned int k, int accumulate)
{
    gemm_tile(a, b, c, m, n, k, accumulate);
}
