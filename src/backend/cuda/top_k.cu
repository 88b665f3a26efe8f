// The k largest values of each row of logits, on the GPU: what a sampler with a top-k filter
// needs, without copying whole rows to the host (a row of Llama 3's logits is 513 KB, 64 rows
// 33 MB). One block per row finds the k-th largest by radix selection over a 64-bit key that
// orders the values as the CPU sampler does (larger first, NaN before everything so that it is
// seen and refused, -0 equal to +0) and breaks ties by the lower column: every key is distinct,
// so exactly k values lie at or above the one selected. The reference is the CPU backend's
// top_k (backend::rank_top_k), which tests/cuda compares it with.
#include <cuda_runtime.h>

#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/warp.cuh"

namespace hearth::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kBins = 256;

// Larger value, larger key; the column's complement in the low half puts lower columns first.
__device__ __forceinline__ uint64_t rank_key(float value, int64_t column) {
    uint32_t bits = __float_as_uint(value == 0.0f ? 0.0f : value);
    if (value != value) bits = 0x7fffffffu;  // NaN: above +inf once mapped
    const uint32_t ordered = (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
    return (static_cast<uint64_t>(ordered) << 32) | (0xffffffffu - static_cast<uint32_t>(column));
}

// Lanes holding the same bin add once, by their lowest lane: the logits of a row share a few
// exponents, so most of a pass's increments fall in one or two bins.
__device__ __forceinline__ void count_in_bin(unsigned* histogram, unsigned bin, bool counted) {
    const unsigned voters = __ballot_sync(0xffffffffu, counted);
    if (!counted) return;
    const unsigned same = __match_any_sync(voters, bin);
    if ((threadIdx.x % kWarp) == static_cast<unsigned>(__ffs(same) - 1)) atomicAdd(&histogram[bin], __popc(same));
}

__global__ void __launch_bounds__(kThreads)
    top_k_kernel(const float* __restrict__ x, int64_t cols, int k, int32_t* __restrict__ columns,
                 float* __restrict__ values) {
    wait_for_previous_kernel();
    __shared__ unsigned histogram[kBins];
    __shared__ int chosen_bin, count_above;
    __shared__ uint64_t selected[kMaxTopK];
    __shared__ int selected_count;
    const float* row = x + blockIdx.x * cols;

    // Radix selection, 8 bits a pass from the top: `prefix` is the top `bits` bits of the k-th
    // largest key, `needed` how many of the keys sharing them are among the k. Once a bin holds
    // exactly the keys still needed, every key with that prefix is taken and the search stops.
    uint64_t prefix = 0;
    int bits = 0, needed = k;
    while (bits < 64) {
        for (int b = threadIdx.x; b < kBins; b += kThreads) histogram[b] = 0;
        __syncthreads();
        const int shift = 56 - bits;
        for (int64_t base = 0; base < cols; base += kThreads) {
            const int64_t c = base + threadIdx.x;
            const uint64_t key = c < cols ? rank_key(row[c], c) : 0;
            const bool matches = c < cols && (bits == 0 || (key >> (64 - bits)) == prefix);
            count_in_bin(histogram, static_cast<unsigned>((key >> shift) & 0xff), matches);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int above = 0, bin = kBins - 1;
            for (; bin > 0; --bin) {
                if (above + static_cast<int>(histogram[bin]) >= needed) break;
                above += static_cast<int>(histogram[bin]);
            }
            chosen_bin = bin;
            count_above = above;
        }
        __syncthreads();
        needed -= count_above;
        prefix = (prefix << 8) | static_cast<uint64_t>(chosen_bin);
        bits += 8;
        const bool all_taken = static_cast<int>(histogram[chosen_bin]) == needed;
        __syncthreads();  // every thread has read the histogram before the next pass clears it
        if (all_taken) break;
    }

    // The k keys whose top `bits` bits are at or above the prefix, in any order...
    if (threadIdx.x == 0) selected_count = 0;
    __syncthreads();
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
        const uint64_t key = rank_key(row[c], c);
        if ((key >> (64 - bits)) >= prefix) selected[atomicAdd(&selected_count, 1)] = key;
    }
    __syncthreads();
    // ...then ranked: a key's place is the number of keys above it (all distinct).
    for (int i = threadIdx.x; i < k; i += kThreads) {
        const uint64_t key = selected[i];
        int place = 0;
        for (int j = 0; j < k; ++j) place += selected[j] > key;
        const int64_t column = 0xffffffffu - static_cast<uint32_t>(key);
        columns[blockIdx.x * k + place] = static_cast<int32_t>(column);
        values[blockIdx.x * k + place] = row[column];
    }
}

}  // namespace

void top_k_rows(const float* x, int64_t rows, int64_t cols, int k, int32_t* columns, float* values, Stream stream) {
    launch(top_k_kernel, static_cast<unsigned>(rows), kThreads, stream, x, cols, k, columns, values);
}

}  // namespace hearth::cuda
