// What the two batched-decoding products (matmul_int8_mma, matmul_f16_mma) share: several
// matrices in one launch, groups of rows split along their length by the blocks of a cluster
// (their sums added through distributed shared memory), and asynchronous copies into shared
// memory.
#pragma once

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace hearth::cuda {

constexpr int kMaxClusterBlocks = 8;  // the largest cluster every Hopper part runs

// Up to kMaxFusedMmas matrices of one type and row length, multiplied by the same activations in
// one launch (a layer's Q, K and V): matrix i takes blocks first_block[i] .. first_block[i + 1] - 1,
// its groups of rows times the launch's split count, so that no cluster spans two matrices. The
// matrices differ only in their data and rows.
struct MmaJobs {
    DeviceMatrix w[kMaxFusedMmas];
    float* out[kMaxFusedMmas];
    int first_block[kMaxFusedMmas + 1];
    int count;
};
static_assert(kMaxFusedMmas == 3, "matrix_of_block and select choose among three");

// The jobs of `count` products for the launch of tokens first_token, first_token + 1, ...: each
// matrix's outputs from that token's row on.
inline MmaJobs jobs_from(const MatvecProduct* products, int count, int64_t first_token) {
    MmaJobs jobs{};
    jobs.count = count;
    for (int i = 0; i < count; ++i) {
        jobs.w[i] = products[i].w;
        jobs.out[i] = products[i].out + first_token * products[i].w.rows;
    }
    return jobs;
}

// The index of this block's matrix.
__device__ __forceinline__ int matrix_of_block(const MmaJobs& jobs) {
    int j = 0;
#pragma unroll
    for (int i = 1; i < kMaxFusedMmas; ++i)
        if (i < jobs.count && static_cast<int>(blockIdx.x) >= jobs.first_block[i]) j = i;
    return j;
}

// Parameter i of three, selected by value, not indexed: a run-time index into the parameters
// would go through memory.
template <typename T>
__device__ __forceinline__ T select(int i, T first, T second, T third) {
    return i == 0 ? first : (i == 1 ? second : third);
}

// The blocks that split one group of rows: a cluster on Hopper, or one block.
__device__ __forceinline__ void sync_splits(int splits) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (splits > 1) {
        cooperative_groups::this_cluster().sync();
        return;
    }
#endif
    __syncthreads();
}

__device__ __forceinline__ const float* partial_sums_of(float* mine, int split, int splits) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (splits > 1) return cooperative_groups::this_cluster().map_shared_rank(mine, split);
#endif
    return mine;
}

// Block `split` of a group adds up the partial sums ([token][row], rows padded to `row_stride`, a
// multiple of 4) of every block of its group, for tokens split, split + splits, ..., and stores
// (or adds) them: out[t][row] of a matrix of `matrix_rows` rows. Every block of the group calls it
// after sync_splits; it syncs again before returning, as the others may still read this block's
// sums. A thread takes four adjacent rows of up to kMaxTokens / (kThreads / (kRowsPerBlock / 4))
// tokens and has all of a block's 16-byte reads in flight at once: another block's shared memory
// is hundreds of cycles away, and one read at a time made this the kernels' longest stall at 64
// tokens (Nsight Compute, docs/performance.md).
template <int kThreads, int kRowsPerBlock, int kMaxTokens>
__device__ __forceinline__ void store_group_sums(float* partial_sums, int row_stride, int64_t row_group, int split,
                                                 int splits, int tokens, int64_t matrix_rows, float* out,
                                                 bool accumulate) {
    constexpr int kQuadsPerRow = kRowsPerBlock / 4;
    static_assert(kThreads % kQuadsPerRow == 0, "the sums take whole token rows of threads");
    constexpr int kTokensAtOnce = kThreads / kQuadsPerRow;
    constexpr int kPerThread = (kMaxTokens + kTokensAtOnce - 1) / kTokensAtOnce;
    const int quad = static_cast<int>(threadIdx.x % kQuadsPerRow);
    const int first_token = split + splits * static_cast<int>(threadIdx.x / kQuadsPerRow);
    const int token_stride = splits * kTokensAtOnce;
    float4 sums[kPerThread];
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) sums[i] = make_float4(0, 0, 0, 0);
    for (int s = 0; s < splits; ++s) {
        const float* from = partial_sums_of(partial_sums, s, splits) + 4 * quad;
#pragma unroll
        for (int i = 0; i < kPerThread; ++i) {
            const int t = first_token + token_stride * i;
            if (t < tokens) {
                const float4 v = *reinterpret_cast<const float4*>(from + t * row_stride);
                sums[i].x += v.x, sums[i].y += v.y, sums[i].z += v.z, sums[i].w += v.w;
            }
        }
    }
    const int64_t row = row_group * kRowsPerBlock + 4 * quad;
    // Whole 16-byte stores where the rows allow (a model's matrices), else one value at a time.
    const bool whole = matrix_rows % 4 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
        const int t = first_token + token_stride * i;
        if (t >= tokens || row >= matrix_rows) break;
        float* at = out + t * matrix_rows + row;
        if (whole) {
            float4 v = sums[i];
            if (accumulate) {
                const float4 held = *reinterpret_cast<const float4*>(at);
                v.x += held.x, v.y += held.y, v.z += held.z, v.w += held.w;
            }
            *reinterpret_cast<float4*>(at) = v;
            continue;
        }
        const float values[4] = {sums[i].x, sums[i].y, sums[i].z, sums[i].w};
#pragma unroll
        for (int e = 0; e < 4; ++e)
            if (row + e < matrix_rows) at[e] = accumulate ? at[e] + values[e] : values[e];
    }
    if (splits > 1) sync_splits(splits);
}

// The same, a value at a time: a thread takes one row of every (kThreads / kRowsPerBlock)-th token.
// The int8 kernel keeps this form from 33 tokens, where the form above was slower (H100, Q6_K at
// 64 tokens: output 634 -> 684 us, ffn_down 94.8 -> 100.8; docs/performance.md).
template <int kThreads, int kRowsPerBlock>
__device__ __forceinline__ void store_group_sums_by_row(float* partial_sums, int row_stride, int64_t row_group,
                                                        int split, int splits, int tokens, int64_t matrix_rows,
                                                        float* out, bool accumulate) {
    static_assert(kThreads % kRowsPerBlock == 0, "the sums take whole rows of threads");
    const int row_in_block = static_cast<int>(threadIdx.x % kRowsPerBlock);
    const int64_t row = row_group * kRowsPerBlock + row_in_block;
    constexpr int kTokensAtOnce = kThreads / kRowsPerBlock;
    for (int t = split + splits * static_cast<int>(threadIdx.x / kRowsPerBlock); t < tokens;
         t += splits * kTokensAtOnce) {
        float sum = 0;
        for (int s = 0; s < splits; ++s)
            sum += partial_sums_of(partial_sums, s, splits)[t * row_stride + row_in_block];
        if (row < matrix_rows) {
            float* at = out + t * matrix_rows + row;
            *at = accumulate ? *at + sum : sum;
        }
    }
    if (splits > 1) sync_splits(splits);
}

__device__ __forceinline__ void copy_16_async(void* shared, const void* global) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(
                     static_cast<unsigned>(__cvta_generic_to_shared(shared))),
                 "l"(global));
}

__device__ __forceinline__ void commit_copies() {
    asm volatile("cp.async.commit_group;");
}

// Waits until at most `kPending` of the latest groups of copies are still in flight.
template <int kPending>
__device__ __forceinline__ void wait_for_copies() {
    asm volatile("cp.async.wait_group %0;" ::"n"(kPending));
}

// How many blocks split each group of rows, on Hopper (clusters) only. A block's time goes with
// its steps, and blocks beyond what the SMs hold at once run in another wave: the split that
// makes waves x steps per block smallest, the fewest blocks among equals.
inline int splits_for(int64_t row_groups, int64_t steps, int blocks_per_sm) {
    int device = 0, major = 0, sms = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (major < 9) return 1;
    const int64_t resident = int64_t{std::max(blocks_per_sm, 1)} * sms;
    int best = 1;
    int64_t best_cost = INT64_MAX;
    for (int splits = 1; splits <= std::min<int64_t>(kMaxClusterBlocks, steps); ++splits) {
        const int64_t waves = (row_groups * splits + resident - 1) / resident;
        const int64_t cost = waves * ((steps + splits - 1) / splits);
        if (cost < best_cost) best = splits, best_cost = cost;
    }
    return best;
}

// The first block of each matrix for `splits` blocks a group of `rows_per_block` rows; returns
// the blocks in all.
inline int64_t assign_blocks(MmaJobs& jobs, int64_t rows_per_block, int splits) {
    int64_t blocks = 0;
    for (int i = 0; i < jobs.count; ++i) {
        jobs.first_block[i] = static_cast<int>(blocks);
        blocks += (jobs.w[i].rows + rows_per_block - 1) / rows_per_block * splits;
    }
    jobs.first_block[jobs.count] = static_cast<int>(blocks);
    return blocks;
}

inline int64_t row_groups(const MmaJobs& jobs, int64_t rows_per_block) {
    int64_t groups = 0;
    for (int i = 0; i < jobs.count; ++i) groups += (jobs.w[i].rows + rows_per_block - 1) / rows_per_block;
    return groups;
}

}  // namespace hearth::cuda
