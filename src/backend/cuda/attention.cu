// The KV cache's writes and causal grouped-query attention over it, flash-decoding style: the
// keys of each (row, head) are split into ranges, each warp streams over one range with an online
// softmax (running max m, running sum l, unnormalized output), and a second kernel merges the
// ranges. No score matrix is ever stored, so memory stays O(ranges) at any context length.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/warp.cuh"

namespace hearth::cuda {
namespace {

constexpr int kWarpsPerBlock = kAttentionWarpsPerRange;
constexpr int kMaxDimsPerLane = 8;  // head_dim <= 256
constexpr int kQ8Block = 32;
constexpr int kQ8BlockBytes = 34;  // fp16 d, then 32 int8

__device__ __forceinline__ uint8_t* kv_row(const KvRows& kv, int64_t kv_head, int64_t position) {
    return kv.base + kv_head * kv.head_stride + position * kv.row_bytes;
}

__device__ __forceinline__ float kv_value(const KvRows& kv, const uint8_t* row, int dim) {
    if (kv.type == type_id::F16) return __half2float(reinterpret_cast<const __half*>(row)[dim]);
    const uint8_t* block = row + (dim / kQ8Block) * kQ8BlockBytes;
    return __half2float(*reinterpret_cast<const __half*>(block)) *
           static_cast<float>(reinterpret_cast<const int8_t*>(block + 2)[dim % kQ8Block]);
}

// Block (row, kv_head), head_dim threads: F16 rounds each value; Q8_0 gives each 32 values the
// step max|x| / 127 and rounds halves away from zero, as the CPU's quantize_row_q8_0.
__global__ void store_kv_kernel(KvRows keys, KvRows values, const float* __restrict__ k, const float* __restrict__ v,
                                int64_t kv_heads, int64_t head_dim, const int32_t* __restrict__ positions) {
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x, kv_head = blockIdx.y;
    const int dim = threadIdx.x;
    const int64_t at = (row * kv_heads + kv_head) * head_dim + dim;
    for (int which = 0; which < 2; ++which) {
        const KvRows& kv = which == 0 ? keys : values;
        const float x = which == 0 ? k[at] : v[at];
        uint8_t* out = kv_row(kv, kv_head, positions[row]);
        if (kv.type == type_id::F16) {
            reinterpret_cast<__half*>(out)[dim] = __float2half_rn(x);
            continue;
        }
        const float d = warp_max(fabsf(x)) / 127.0f;
        const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t* block = out + (dim / kQ8Block) * kQ8BlockBytes;
        reinterpret_cast<int8_t*>(block + 2)[dim % kQ8Block] = static_cast<int8_t>(roundf(x * inverse_d));
        if (dim % kQ8Block == 0) *reinterpret_cast<__half*>(block) = __float2half_rn(d);
    }
}

// Block (row, head, range), kWarpsPerBlock warps; warp w takes its share of the range's keys and
// writes a partial (m, l, out[head_dim]) for the merge. Lane holds dims lane + 32 i.
__global__ void __launch_bounds__(kWarp* kWarpsPerBlock)
    attention_kernel(KvRows keys, KvRows values, const float* __restrict__ q, int64_t heads, int64_t kv_heads,
                     int64_t head_dim, const int32_t* __restrict__ positions, float scale,
                     float* __restrict__ partials) {
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x, head = blockIdx.y, range = blockIdx.z;
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int64_t kv_head = head / (heads / kv_heads);
    const int64_t visible = static_cast<int64_t>(positions[row]) + 1;
    // This row's keys, cut into gridDim.z ranges of whole warps' shares.
    const int64_t keys_per_warp = (visible + gridDim.z * kWarpsPerBlock - 1) / (gridDim.z * kWarpsPerBlock);
    const int64_t keys_per_range = keys_per_warp * kWarpsPerBlock;
    const int64_t begin = range * keys_per_range + warp * keys_per_warp;
    const int64_t end = min(begin + keys_per_warp, visible);
    const int dims = static_cast<int>(head_dim / kWarp);

    float query[kMaxDimsPerLane], out[kMaxDimsPerLane];
    const float* qh = q + (row * heads + head) * head_dim;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
        query[i] = i < dims ? qh[lane + kWarp * i] * scale : 0.0f;
        out[i] = 0.0f;
    }
    float running_max = -INFINITY, running_sum = 0.0f;
    for (int64_t p = begin; p < end; ++p) {
        const uint8_t* key = kv_row(keys, kv_head, p);
        float partial = 0.0f;
#pragma unroll
        for (int i = 0; i < kMaxDimsPerLane; ++i)
            if (i < dims) partial += query[i] * kv_value(keys, key, lane + kWarp * i);
        const float score = warp_sum(partial);
        const float new_max = fmaxf(running_max, score);
        const float correction = expf(running_max - new_max);
        const float weight = expf(score - new_max);
        running_sum = running_sum * correction + weight;
        running_max = new_max;
        const uint8_t* value = kv_row(values, kv_head, p);
#pragma unroll
        for (int i = 0; i < kMaxDimsPerLane; ++i)
            if (i < dims) out[i] = out[i] * correction + weight * kv_value(values, value, lane + kWarp * i);
    }
    // The warps' results merge here, so the merge kernel reads one partial per range.
    __shared__ float warp_max_of[kWarpsPerBlock], warp_sum_of[kWarpsPerBlock];
    __shared__ float warp_out[kWarpsPerBlock][kMaxDimsPerLane * kWarp];
    if (lane == 0) {
        warp_max_of[warp] = running_max;
        warp_sum_of[warp] = running_sum;
    }
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i)
        if (i < dims) warp_out[warp][lane + kWarp * i] = out[i];
    __syncthreads();
    if (warp != 0) return;
    float block_max = -INFINITY;
    for (int w = 0; w < kWarpsPerBlock; ++w)
        if (warp_sum_of[w] > 0.0f) block_max = fmaxf(block_max, warp_max_of[w]);
    float weights[kWarpsPerBlock], block_sum = 0.0f;
    for (int w = 0; w < kWarpsPerBlock; ++w) {
        weights[w] = warp_sum_of[w] > 0.0f ? expf(warp_max_of[w] - block_max) : 0.0f;
        block_sum += weights[w] * warp_sum_of[w];
    }
    float* partial = partials + ((row * heads + head) * gridDim.z + range) * (head_dim + 2);
    if (lane == 0) {
        partial[0] = block_max;
        partial[1] = block_sum;
    }
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
        if (i >= dims) continue;
        float merged = 0.0f;
        for (int w = 0; w < kWarpsPerBlock; ++w) merged += weights[w] * warp_out[w][lane + kWarp * i];
        partial[2 + lane + kWarp * i] = merged;
    }
}

// Block (row, head), one thread per dim: out = sum_s e^(m_s - M) out_s / sum_s e^(m_s - M) l_s.
constexpr int kMergeThreads = 128;

__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const float* __restrict__ partials, int64_t heads,
                                                              int64_t head_dim, int64_t partial_count,
                                                              float* __restrict__ out) {
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x, head = blockIdx.y;
    const float* first = partials + (row * heads + head) * partial_count * (head_dim + 2);
    // M, the threads reading the partials' maxima together.
    __shared__ float maxima[kMergeThreads / kWarp];
    float local = -INFINITY;
    for (int64_t s = threadIdx.x; s < partial_count; s += kMergeThreads)
        if (first[s * (head_dim + 2) + 1] > 0.0f) local = fmaxf(local, first[s * (head_dim + 2)]);
    local = warp_max(local);
    if (threadIdx.x % kWarp == 0) maxima[threadIdx.x / kWarp] = local;
    __syncthreads();
    float largest = -INFINITY;
    for (int w = 0; w < kMergeThreads / kWarp; ++w) largest = fmaxf(largest, maxima[w]);
    for (int64_t dim = threadIdx.x; dim < head_dim; dim += blockDim.x) {
        float numerator = 0.0f, denominator = 0.0f;
        for (int64_t s = 0; s < partial_count; ++s) {
            const float* p = first + s * (head_dim + 2);
            if (p[1] == 0.0f) continue;  // a range past the visible keys
            const float w = expf(p[0] - largest);
            numerator += w * p[2 + dim];
            denominator += w * p[1];
        }
        out[(row * heads + head) * head_dim + dim] = numerator / denominator;
    }
}

}  // namespace

void store_kv(KvRows keys, KvRows values, const float* k, const float* v, int64_t rows, int64_t kv_heads,
              int64_t head_dim, const int32_t* positions, Stream stream) {
    launch(store_kv_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(kv_heads)),
                      static_cast<unsigned>(head_dim), stream, keys, values, k, v, kv_heads, head_dim, positions);
}

void attention(KvRows keys, KvRows values, const float* q, int64_t rows, int64_t heads, int64_t kv_heads,
               int64_t head_dim, const int32_t* positions, int64_t capacity, float scale, float* scratch, float* out,
               Stream stream) {
    const int64_t ranges = attention_range_count(rows, heads, capacity);
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(heads), static_cast<unsigned>(ranges));
    launch(attention_kernel, grid, kWarp * kWarpsPerBlock, stream, keys, values, q, heads, kv_heads, head_dim, positions,
                                                                   scale, scratch);
    launch(merge_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(heads)), kMergeThreads, stream,
           scratch, heads, head_dim, ranges, out);
}

}  // namespace hearth::cuda
