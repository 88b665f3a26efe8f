// The small ops between the matrix products: RMSNorm, RoPE, SwiGLU, the residual add, and the
// read-bandwidth probe. Each is one pass over its rows; their references are the CPU's
// (src/backend/cpu/ops_reference.cpp), which tests/cuda compares them with.
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/activation_blocks.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/warp.cuh"

namespace hearth::cuda {
namespace {

constexpr int kThreads = 256;

// The sum of v over the thread block (kThreads threads), returned to every thread.
__device__ float block_sum(float v) {
    __shared__ float partial[kThreads / kWarp];
    v = warp_sum(v);
    if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = v;
    __syncthreads();
    float total = 0;
#pragma unroll
    for (int i = 0; i < kThreads / kWarp; ++i) total += partial[i];
    return total;
}

__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const float* __restrict__ x, int64_t cols,
                                                           const float* __restrict__ weight, float epsilon,
                                                           float* __restrict__ out) {
    wait_for_previous_kernel();
    const float* xr = x + blockIdx.x * cols;
    float* yr = out + blockIdx.x * cols;
    float squares = 0;
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) squares += xr[i] * xr[i];
    const float inverse_rms = rsqrtf(block_sum(squares) / static_cast<float>(cols) + epsilon);
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) yr[i] = xr[i] * inverse_rms * weight[i];
}

// RMSNorm for decoding (a few rows of whole 32-value blocks), writing the result's copies too.
// Block (row, slice): every block sums the whole row's squares (a few KB from L2, read in
// parallel), then each of its warps finishes one 32-value block of its slice. A block per row
// would leave one SM working through the row alone, the slowest op of a decode step.
constexpr int kBlocksPerSlice = kThreads / kWarp;

__global__ void __launch_bounds__(kThreads) rmsnorm_copied_kernel(const float* __restrict__ x, int64_t cols,
                                                                  const float* __restrict__ weight, float epsilon,
                                                                  float* __restrict__ out, ActivationCopies copies) {
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x;
    const float* xr = x + row * cols;
    float squares[4] = {};
#pragma unroll 4
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) squares[(i / kThreads) % 4] += xr[i] * xr[i];
    const float inverse_rms =
        rsqrtf(block_sum(squares[0] + squares[1] + squares[2] + squares[3]) / static_cast<float>(cols) + epsilon);
    const int lane = threadIdx.x % kWarp;
    const int64_t blocks = cols / kActivationBlock;
    const int64_t b = static_cast<int64_t>(blockIdx.y) * kBlocksPerSlice + threadIdx.x / kWarp;
    if (b >= blocks) return;
    const int64_t i = b * kActivationBlock + lane;
    const float y = xr[i] * inverse_rms * weight[i];
    out[row * cols + i] = y;
    write_copies(copies, y, lane, row * cols + i);
}

// SwiGLU over whole 32-value blocks, one warp per block, writing the result's copies as well.
__global__ void swiglu_copied_kernel(float* __restrict__ gate, const float* __restrict__ up, int64_t blocks,
                                     ActivationCopies copies) {
    wait_for_previous_kernel();
    const int64_t block = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    if (block >= blocks) return;
    const int lane = threadIdx.x % kWarp;
    const int64_t i = block * kActivationBlock + lane;
    const float g = gate[i];
    const float y = g / (1.0f + expf(-g)) * up[i];
    gate[i] = y;
    write_copies(copies, y, lane, i);
}

// One thread per rotated pair.
__global__ void rope_kernel(float* __restrict__ x, int64_t rows, int64_t cols, const int32_t* __restrict__ positions,
                            int64_t head_dim, int64_t pairs_per_head, const double* __restrict__ inverse_frequencies,
                            double freq_scale) {
    wait_for_previous_kernel();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t heads = cols / head_dim;
    if (i >= rows * heads * pairs_per_head) return;
    const int64_t pair = i % pairs_per_head, head = (i / pairs_per_head) % heads, row = i / (pairs_per_head * heads);
    double sine, cosine;
    sincos(freq_scale * positions[row] * inverse_frequencies[pair], &sine, &cosine);
    float* h = x + row * cols + head * head_dim + 2 * pair;
    const double x0 = h[0], x1 = h[1];
    h[0] = static_cast<float>(x0 * cosine - x1 * sine);
    h[1] = static_cast<float>(x0 * sine + x1 * cosine);
}

__global__ void swiglu_kernel(float* __restrict__ gate, const float* __restrict__ up, int64_t count) {
    wait_for_previous_kernel();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count) return;
    const float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
}

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, int64_t count) {
    wait_for_previous_kernel();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) x[i] += y[i];
}

// Grid-stride 16-byte loads, summed so that the compiler keeps them; the sum is written only if
// it is exactly a value no real data gives, so the write costs nothing.
__global__ void read_all_kernel(const int4* __restrict__ data, int64_t vectors, float* sink) {
    int acc = 0;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors; i += 4 * stride) {
        int4 v[4];
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (i + k * stride < vectors) v[k] = data[i + k * stride];
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (i + k * stride < vectors) acc ^= v[k].x ^ v[k].y ^ v[k].z ^ v[k].w;
    }
    if (acc == 0x7fedcba9) *sink = static_cast<float>(acc);
}

// A candidate for a row's largest value: ties go to the lower column; NaN wins over everything,
// so that a row holding one reports it.
struct Best {
    float value;
    int32_t column;
};

__device__ __forceinline__ Best better(Best a, Best b) {
    if (isnan(a.value)) return a;
    if (isnan(b.value)) return b;
    if (b.value > a.value || (b.value == a.value && b.column < a.column)) return b;
    return a;
}

__device__ __forceinline__ Best warp_best(Best b) {
    for (int offset = kWarp / 2; offset > 0; offset >>= 1) {
        const Best other{__shfl_xor_sync(0xffffffffu, b.value, offset), __shfl_xor_sync(0xffffffffu, b.column, offset)};
        b = better(b, other);
    }
    return b;
}

// The best of this block's values (every thread's `best`), in thread 0.
__device__ __forceinline__ Best block_best(Best best) {
    __shared__ Best partial[kThreads / kWarp];
    best = warp_best(best);
    if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = best;
    __syncthreads();
    if (threadIdx.x == 0)
        for (int w = 1; w < kThreads / kWarp; ++w) best = better(best, partial[w]);
    return best;
}

// Block (row, slice): the best of the row's columns [slice * slice_cols, + slice_cols), four loads
// in flight a thread. One block a row read a 128256-column row one dependent load at a time: ~200
// us a pass, whatever the rows (H100, 16 and 64 streams).
constexpr int kArgmaxLoads = 4;

__global__ void __launch_bounds__(kThreads) argmax_slices_kernel(const float* __restrict__ x, int64_t cols,
                                                                 int64_t slice_cols, Best* __restrict__ partials) {
    wait_for_previous_kernel();
    const float* row = x + blockIdx.x * cols;
    const int64_t begin = blockIdx.y * slice_cols, end = min(cols, begin + slice_cols);
    Best best{-INFINITY, static_cast<int32_t>(cols)};
    int64_t c = begin + threadIdx.x;
    for (; c + (kArgmaxLoads - 1) * kThreads < end; c += kArgmaxLoads * kThreads) {
        float v[kArgmaxLoads];
#pragma unroll
        for (int i = 0; i < kArgmaxLoads; ++i) v[i] = row[c + i * kThreads];
#pragma unroll
        for (int i = 0; i < kArgmaxLoads; ++i) best = better(best, {v[i], static_cast<int32_t>(c + i * kThreads)});
    }
    for (; c < end; c += kThreads) best = better(best, {row[c], static_cast<int32_t>(c)});
    best = block_best(best);
    if (threadIdx.x == 0) partials[blockIdx.x * gridDim.y + blockIdx.y] = best;
}

// Block per row, a warp: the best of its slices' bests.
__global__ void argmax_finish_kernel(const Best* __restrict__ partials, int slices, int64_t cols,
                                     int32_t* __restrict__ columns, float* __restrict__ values) {
    wait_for_previous_kernel();
    Best best{-INFINITY, static_cast<int32_t>(cols)};
    for (int s = threadIdx.x; s < slices; s += kWarp) best = better(best, partials[blockIdx.x * slices + s]);
    best = warp_best(best);
    if (threadIdx.x != 0) return;
    columns[blockIdx.x] = best.column < cols ? best.column : 0;  // an all -inf row: column 0
    values[blockIdx.x] = best.value;
}

unsigned blocks_for(int64_t threads) { return static_cast<unsigned>((threads + kThreads - 1) / kThreads); }

}  // namespace

void rmsnorm(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon, float* out,
             Stream stream) {
    launch(rmsnorm_kernel, static_cast<unsigned>(rows), kThreads, stream, x, cols, weight, epsilon, out);
}

void rmsnorm_copied(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon, float* out,
                    ActivationCopies copies, Stream stream) {
    const int64_t slices = (cols / kActivationBlock + kBlocksPerSlice - 1) / kBlocksPerSlice;
    launch(rmsnorm_copied_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(slices)), kThreads, stream,
           x, cols, weight, epsilon, out, copies);
}

void swiglu_copied(float* gate, const float* up, int64_t count, ActivationCopies copies, Stream stream) {
    const int64_t blocks = count / kActivationBlock;
    launch(swiglu_copied_kernel, blocks_for(blocks * kWarp), kThreads, stream, gate, up, blocks, copies);
}

void rope(float* x, int64_t rows, int64_t cols, const int32_t* positions, int64_t head_dim, int64_t rotary_dims,
          const double* inverse_frequencies, double freq_scale, Stream stream) {
    const int64_t pairs = rotary_dims / 2;
    launch(rope_kernel, blocks_for(rows * (cols / head_dim) * pairs), kThreads, stream, 
        x, rows, cols, positions, head_dim, pairs, inverse_frequencies, freq_scale);
}

void swiglu(float* gate, const float* up, int64_t count, Stream stream) {
    launch(swiglu_kernel, blocks_for(count), kThreads, stream, gate, up, count);
}

void add(float* x, const float* y, int64_t count, Stream stream) {
    launch(add_kernel, blocks_for(count), kThreads, stream, x, y, count);
}

void argmax_rows(const float* x, int64_t rows, int64_t cols, void* scratch, int32_t* columns, float* values,
                 Stream stream) {
    static_assert(sizeof(Best) == 8, "argmax_scratch_bytes counts 8 bytes a slice");
    const int64_t slice_cols = std::max<int64_t>(kMinArgmaxSliceCols, (cols + kArgmaxSlices - 1) / kArgmaxSlices);
    const int slices = static_cast<int>((cols + slice_cols - 1) / slice_cols);
    auto* partials = static_cast<Best*>(scratch);
    launch(argmax_slices_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(slices)), kThreads, stream, x,
           cols, slice_cols, partials);
    launch(argmax_finish_kernel, static_cast<unsigned>(rows), kWarp, stream, partials, slices, cols, columns, values);
}

void read_all(const uint8_t* data, size_t bytes, float* sink, Stream stream) {
    int device = 0, multiprocessors = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device);
    read_all_kernel<<<static_cast<unsigned>(multiprocessors * 8), kThreads, 0, stream>>>(
        reinterpret_cast<const int4*>(data), static_cast<int64_t>(bytes / 16), sink);
}

}  // namespace hearth::cuda
