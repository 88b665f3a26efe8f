// The KV cache's writes (with RoPE on q and k, or without) and causal grouped-query attention over
// it. Decoding (up to kMaxMatvecTokens rows) is flash-decoding style: the keys of each (row, kv
// head) are split into ranges, each warp streams over one range with an online softmax (running
// max m, running sum l, unnormalized output), and a second kernel merges the ranges; no score
// matrix is stored. Prompts instead multiply on cuBLAS's tensor cores (CudaBackend::
// prompt_attention): the kernels at the end of this file prepare and softmax their scores.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/activation_blocks.cuh"
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

// The cache slot of position p of the sequence whose block table is `table` (none: p).
__device__ __forceinline__ int64_t slot_in_table(const int32_t* table, int64_t p) {
    if (!table) return p;
    return static_cast<int64_t>(table[p / kKvBlockPositions]) * kKvBlockPositions + p % kKvBlockPositions;
}

// The block table of row `row`'s sequence (none: the cache in order).
__device__ __forceinline__ const int32_t* sequence_table(const KvPages& pages, int64_t row) {
    return pages.tables ? pages.tables + static_cast<int64_t>(pages.sequence_of[row]) * pages.table_stride : nullptr;
}

// The cache slot of position p of row `row`'s sequence.
__device__ __forceinline__ int64_t kv_slot(const KvPages& pages, int64_t row, int64_t p) {
    if (!pages.tables) return p;
    return slot_in_table(sequence_table(pages, row), p);
}

__device__ __forceinline__ float kv_value(const KvRows& kv, const uint8_t* row, int dim) {
    if (kv.type == type_id::F16) return __half2float(reinterpret_cast<const __half*>(row)[dim]);
    const uint8_t* block = row + (dim / kQ8Block) * kQ8BlockBytes;
    return __half2float(*reinterpret_cast<const __half*>(block)) *
           static_cast<float>(reinterpret_cast<const int8_t*>(block + 2)[dim % kQ8Block]);
}

// Thread `dim` of a head's block writes its value x into the cache row: F16 rounds it; Q8_0 gives
// each 32 values (a warp) the step max|x| / 127 and rounds halves away from zero, as the CPU's
// quantize_row_q8_0.
__device__ __forceinline__ void store_value(const KvRows& kv, uint8_t* row, int dim, float x) {
    if (kv.type == type_id::F16) {
        reinterpret_cast<__half*>(row)[dim] = __float2half_rn(x);
        return;
    }
    const float d = warp_max(fabsf(x)) / 127.0f;
    const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t* block = row + (dim / kQ8Block) * kQ8BlockBytes;
    reinterpret_cast<int8_t*>(block + 2)[dim % kQ8Block] = static_cast<int8_t>(roundf(x * inverse_d));
    if (dim % kQ8Block == 0) *reinterpret_cast<__half*>(block) = __float2half_rn(d);
}

// Block (row, kv_head), head_dim threads.
__global__ void store_kv_kernel(KvRows keys, KvRows values, const float* __restrict__ k, const float* __restrict__ v,
                                int64_t kv_heads, int64_t head_dim, const int32_t* __restrict__ positions,
                                KvPages pages) {
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x, kv_head = blockIdx.y;
    const int dim = threadIdx.x;
    const int64_t at = (row * kv_heads + kv_head) * head_dim + dim;
    const int64_t slot = kv_slot(pages, row, positions[row]);
    store_value(keys, kv_row(keys, kv_head, slot), dim, k[at]);
    store_value(values, kv_row(values, kv_head, slot), dim, v[at]);
}

// RoPE as rope_kernel computes it (float64 angle and products), for the value x of `dim` whose
// pair partner (dim ^ 1) is in the neighbouring lane.
__device__ __forceinline__ float rotated(float x, int dim, int64_t rotary_dims, int32_t position,
                                         const double* __restrict__ inverse_frequencies, double freq_scale) {
    const float partner = __shfl_xor_sync(0xffffffffu, x, 1);
    if (dim >= rotary_dims) return x;
    double sine, cosine;
    sincos(freq_scale * position * inverse_frequencies[dim / 2], &sine, &cosine);
    const double x0 = dim % 2 == 0 ? x : partner, x1 = dim % 2 == 0 ? partner : x;
    return static_cast<float>(dim % 2 == 0 ? x0 * cosine - x1 * sine : x0 * sine + x1 * cosine);
}

// Block (row, slot), head_dim threads: slots below `heads` rotate a query head in place; the
// others rotate a key head and store it and its value head in the cache (k keeps its rotation
// too). One launch instead of rope on q, rope on k and store_kv.
__global__ void rope_and_store_kv_kernel(KvRows keys, KvRows values, float* __restrict__ q, float* __restrict__ k,
                                         const float* __restrict__ v, int64_t heads, int64_t kv_heads,
                                         int64_t head_dim, int64_t rotary_dims, const int32_t* __restrict__ positions,
                                         KvPages pages, const double* __restrict__ inverse_frequencies,
                                         double freq_scale) {
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x, slot = blockIdx.y;
    const int dim = threadIdx.x;
    const int32_t position = positions[row];
    if (slot < heads) {
        float* x = q + (row * heads + slot) * head_dim + dim;
        *x = rotated(*x, dim, rotary_dims, position, inverse_frequencies, freq_scale);
        return;
    }
    const int64_t kv_head = slot - heads;
    const int64_t at = (row * kv_heads + kv_head) * head_dim + dim;
    const float key = rotated(k[at], dim, rotary_dims, position, inverse_frequencies, freq_scale);
    k[at] = key;
    const int64_t cache_slot = kv_slot(pages, row, position);
    store_value(keys, kv_row(keys, kv_head, cache_slot), dim, key);
    store_value(values, kv_row(values, kv_head, cache_slot), dim, v[at]);
}

// Block (row, head, range), kWarpsPerBlock warps; warp w takes its share of the range's keys and
// writes a partial (m, l, out[head_dim]) for the merge. Lane holds dims lane + 32 i.
__global__ void __launch_bounds__(kWarp* kWarpsPerBlock)
    attention_kernel(KvRows keys, KvRows values, const float* __restrict__ q, int64_t heads, int64_t kv_heads,
                     int64_t head_dim, const int32_t* __restrict__ positions, KvPages pages, float scale,
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
        const int64_t slot = kv_slot(pages, row, p);
        const uint8_t* key = kv_row(keys, kv_head, slot);
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
        const uint8_t* value = kv_row(values, kv_head, slot);
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

// A lane's kDims (at most 4) consecutive values of one cache row, as loaded: f16 pairs, or a q8_0
// block's d (its bits in `first`) and the int8 values (packed in `second`). Kept raw until used:
// half the registers of floats, so that loads can be in flight while a tile is worked on.
struct RawDims {
    uint32_t first, second;
};

// `at` points at the lane's first value: f16 row + 2 kDims lane bytes; q8_0 block + 2 + the value's
// place in its block (`in_block`), the block's d 2 + in_block bytes before it.
template <int kDims>
__device__ __forceinline__ RawDims load_raw(uint32_t type, const uint8_t* at, int in_block) {
    static_assert(kDims == 2 || kDims == 4, "a lane holds 2 or 4 dims");
    if (type == type_id::F16) {
        if constexpr (kDims == 4) {
            const uint2 raw = *reinterpret_cast<const uint2*>(at);
            return {raw.x, raw.y};
        } else {
            return {*reinterpret_cast<const uint32_t*>(at), 0};
        }
    }
    // 34-byte blocks: the values are 2-byte aligned only.
    const auto* pairs = reinterpret_cast<const uint16_t*>(at);
    const uint32_t d = *reinterpret_cast<const uint16_t*>(at - 2 - in_block);
    if constexpr (kDims == 4) return {d, pairs[0] | (static_cast<uint32_t>(pairs[1]) << 16)};
    else return {d, pairs[0]};
}

template <int kDims>
__device__ __forceinline__ void decode_raw(uint32_t type, RawDims raw, float (&out)[kDims]) {
    if (type == type_id::F16) {
        const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&raw.first));
        out[0] = a.x, out[1] = a.y;
        if constexpr (kDims == 4) {
            const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&raw.second));
            out[2] = b.x, out[3] = b.y;
        }
        return;
    }
    const float d = __half2float(__ushort_as_half(static_cast<unsigned short>(raw.first)));
#pragma unroll
    for (int i = 0; i < kDims; ++i) out[i] = d * static_cast<float>(static_cast<int8_t>(raw.second >> (8 * i)));
}

// Where a lane's values of cache row `slot` of one kv head begin (see load_raw), and the offset
// of its first value inside its q8_0 block.
template <int kDims>
struct LaneInRows {
    const uint8_t* head;  // the kv head's rows, plus the lane's place in a row
    size_t row_bytes;
    int in_block;
    __device__ LaneInRows(const KvRows& kv, int64_t kv_head, int lane) {
        const int first = kDims * lane;
        row_bytes = kv.row_bytes;
        in_block = first % kQ8Block;
        const int offset = kv.type == type_id::F16 ? 2 * first : (first / kQ8Block) * kQ8BlockBytes + 2 + in_block;
        head = kv.base + kv_head * kv.head_stride + offset;
    }
    __device__ const uint8_t* at(int32_t slot) const { return head + static_cast<size_t>(slot) * row_bytes; }
};

// values[i] summed over the warp's lanes ends in lane i (all 32 at once, 31 shuffles): at each
// step a lane keeps the half of its values that its lane bit selects and adds its partner's. The
// steps are a template's, not a loop's: the loop (half /= 2) was not unrolled, so its run-time
// indices put `values` in local memory, a round trip through L1 for every value of every tile.
template <int kHalf>
__device__ __forceinline__ void fold_across_warp(float (&values)[kWarp], int lane) {
    if constexpr (kHalf >= 1) {
        const bool upper = (lane & kHalf) != 0;
#pragma unroll
        for (int i = 0; i < kHalf; ++i) {
            const float send = upper ? values[i] : values[i + kHalf];
            const float keep = upper ? values[i + kHalf] : values[i];
            values[i] = keep + __shfl_xor_sync(0xffffffffu, send, kHalf);
        }
        fold_across_warp<kHalf / 2>(values, lane);
    }
}

__device__ __forceinline__ float sum_each_across_warp(float (&values)[kWarp], int lane) {
    fold_across_warp<kWarp / 2>(values, lane);
    return values[0];
}

// Reduces over the lanes that hold the same head (lane % kGroup).
template <int kGroup>
__device__ __forceinline__ float max_over_head(float v) {
#pragma unroll
    for (int offset = kGroup; offset < kWarp; offset *= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}
template <int kGroup>
__device__ __forceinline__ float sum_over_head(float v) {
#pragma unroll
    for (int offset = kGroup; offset < kWarp; offset *= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// The decode kernel for the common shapes: a block per (row, kv head, range) serves the kGroup
// query heads that share the kv head, so each key and value is read once for all of them (the
// kernel above reads them once per query head). A warp takes its keys in tiles of 32 / kGroup:
// lane l holds dims [kDims l, kDims l + kDims) of every key and value of the tile, and the tile's
// 32 (key, head) dot products are reduced across the warp together, so that afterwards lane
// j * kGroup + g holds the score of key j for head g, and the softmax's exponentials are one per
// lane. Four blocks a SM for groups of 4 (Llama 3's 8B and 1B): 8 bytes of spills cost less than
// the fourth block gives (H100, 64 sequences of 192 positions: 34.6 -> 28.1 us).
template <int kGroup>
constexpr int kAttentionBlocksPerSm = kGroup == 4 ? 4 : 1;

template <int kGroup, int kDims>
__global__ void __launch_bounds__(kWarp* kWarpsPerBlock, kAttentionBlocksPerSm<kGroup>)
    attention_group_kernel(KvRows keys, KvRows values, const float* __restrict__ q, int64_t heads, int64_t kv_heads,
                           const int32_t* __restrict__ positions, KvPages pages, float scale,
                           float* __restrict__ partials, float* __restrict__ result, ActivationCopies copies) {
    constexpr int kTile = kWarp / kGroup, kHeadDim = kDims * kWarp;
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x, kv_head = blockIdx.y, range = blockIdx.z;
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int my_key = lane / kGroup;  // this lane's score is key my_key's for head lane % kGroup
    const int64_t visible = static_cast<int64_t>(positions[row]) + 1;
    const int64_t keys_per_warp = (visible + gridDim.z * kWarpsPerBlock - 1) / (gridDim.z * kWarpsPerBlock);
    const int64_t begin = (range * kWarpsPerBlock + warp) * keys_per_warp;
    const int64_t end = min(begin + keys_per_warp, visible);
    const int32_t* table = sequence_table(pages, row);
    const LaneInRows<kDims> key_rows(keys, kv_head, lane), value_rows(values, kv_head, lane);

    float query[kGroup][kDims], out[kGroup][kDims];
    const float* q_group = q + (row * heads + kv_head * kGroup) * kHeadDim;
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
#pragma unroll
        for (int i = 0; i < kDims; ++i) {
            query[g][i] = q_group[g * kHeadDim + kDims * lane + i] * scale;
            out[g][i] = 0.0f;
        }
    }
    // The next tile's keys are loaded as soon as this tile's scores are worked out, its values as
    // soon as this tile's values are added: each load has most of an iteration to arrive, with one
    // tile's registers (a second tile's cost a block a SM). One load a key, used at once, was the
    // kernel's longest stall (Nsight Compute: 80 % of warp samples waiting on global loads at 25 %
    // of the read bandwidth, 64 sequences of 1024 positions).
    struct TileSlots {
        int64_t tile, last;
        int32_t first_slot;
        bool one_block;
    };
    // A tile's keys lie in one cache block but where it crosses one. Past the end: a repeated key,
    // masked below.
    const auto slots_of = [&](int64_t tile) {
        const int64_t last = min(tile + kTile, end) - 1;
        return TileSlots{tile, last, static_cast<int32_t>(slot_in_table(table, tile)),
                         !table || tile / kKvBlockPositions == last / kKvBlockPositions};
    };
    const auto load_rows = [&](const TileSlots& t, const KvRows& kv, const LaneInRows<kDims>& rows,
                               RawDims(&raw)[kTile]) {
#pragma unroll
        for (int j = 0; j < kTile; ++j) {
            const int64_t p = min(t.tile + j, t.last);
            const int32_t slot = t.one_block ? t.first_slot + static_cast<int32_t>(p - t.tile)
                                             : static_cast<int32_t>(slot_in_table(table, p));
            raw[j] = load_raw<kDims>(kv.type, rows.at(slot), rows.in_block);
        }
    };
    RawDims key_raw[kTile], value_raw[kTile];
    if (begin < end) {
        const TileSlots first = slots_of(begin);
        load_rows(first, keys, key_rows, key_raw);
        load_rows(first, values, value_rows, value_raw);
    }
    float running_max = -INFINITY, running_sum = 0.0f;  // of head my_head
    for (int64_t tile = begin; tile < end; tile += kTile) {
        float dots[kWarp];
#pragma unroll
        for (int j = 0; j < kTile; ++j) {
            float key[kDims];
            decode_raw<kDims>(keys.type, key_raw[j], key);
#pragma unroll
            for (int g = 0; g < kGroup; ++g) {
                float dot = 0.0f;
#pragma unroll
                for (int i = 0; i < kDims; ++i) dot += query[g][i] * key[i];
                dots[j * kGroup + g] = dot;
            }
        }
        const bool more = tile + kTile < end;
        const TileSlots next = slots_of(more ? tile + kTile : tile);
        if (more) load_rows(next, keys, key_rows, key_raw);
        const float summed = sum_each_across_warp(dots, lane);  // every lane takes part
        const float score = tile + my_key < end ? summed : -INFINITY;
        const float new_max = fmaxf(running_max, max_over_head<kGroup>(score));
        const float correction = expf(running_max - new_max);  // e^-inf = 0 on the first tile
        const float weight = expf(score - new_max);
        running_sum = running_sum * correction + sum_over_head<kGroup>(weight);
        running_max = new_max;
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
            const float c = __shfl_sync(0xffffffffu, correction, g);
#pragma unroll
            for (int i = 0; i < kDims; ++i) out[g][i] *= c;
        }
#pragma unroll
        for (int j = 0; j < kTile; ++j) {
            float value[kDims];
            decode_raw<kDims>(values.type, value_raw[j], value);
#pragma unroll
            for (int g = 0; g < kGroup; ++g) {
                const float w = __shfl_sync(0xffffffffu, weight, j * kGroup + g);
#pragma unroll
                for (int i = 0; i < kDims; ++i) out[g][i] += w * value[i];
            }
        }
        if (more) load_rows(next, values, value_rows, value_raw);
    }
    // The warps' results merge here: one partial per (head, range) for the merge kernel, or with
    // one range (given `result`) the heads' outputs and their copies, and no merge launch.
    __shared__ float warp_max_of[kWarpsPerBlock][kGroup], warp_sum_of[kWarpsPerBlock][kGroup];
    __shared__ float warp_out[kWarpsPerBlock][kGroup][kHeadDim];
    if (lane < kGroup) {
        warp_max_of[warp][lane] = running_max;
        warp_sum_of[warp][lane] = running_sum;
    }
#pragma unroll
    for (int g = 0; g < kGroup; ++g)
#pragma unroll
        for (int i = 0; i < kDims; ++i) warp_out[warp][g][kDims * lane + i] = out[g][i];
    __syncthreads();
    for (int g = warp; g < kGroup; g += kWarpsPerBlock) {
        float block_max = -INFINITY;
        for (int w = 0; w < kWarpsPerBlock; ++w)
            if (warp_sum_of[w][g] > 0.0f) block_max = fmaxf(block_max, warp_max_of[w][g]);
        float weights[kWarpsPerBlock], block_sum = 0.0f;
        for (int w = 0; w < kWarpsPerBlock; ++w) {
            weights[w] = warp_sum_of[w][g] > 0.0f ? expf(warp_max_of[w][g] - block_max) : 0.0f;
            block_sum += weights[w] * warp_sum_of[w][g];
        }
        // Dim d of the warps' outputs, weighted to the block's max.
        const auto merged = [&](int d) {
            float sum = 0.0f;
            for (int w = 0; w < kWarpsPerBlock; ++w) sum += weights[w] * warp_out[w][g][d];
            return sum;
        };
        const int64_t head = kv_head * kGroup + g;
        if (result) {
            // Every key is this block's: block_sum > 0 (position 0 is always visible).
            const float inverse = 1.0f / block_sum;
            for (int d = lane; d < kHeadDim; d += kWarp) {  // whole warps: a 32-value block at a time
                const int64_t at = (row * heads + head) * kHeadDim + d;
                const float value = merged(d) * inverse;
                result[at] = value;
                write_copies(copies, value, lane, at);
            }
            continue;
        }
        float* partial = partials + ((row * heads + head) * gridDim.z + range) * (kHeadDim + 2);
        if (lane == 0) {
            partial[0] = block_max;
            partial[1] = block_sum;
        }
        for (int d = lane; d < kHeadDim; d += kWarp) partial[2 + d] = merged(d);
    }
}

// Block (row, head), one thread per dim: out = sum_s e^(m_s - M) out_s / sum_s e^(m_s - M) l_s.
// The ranges' weights e^(m_s - M) are worked out once, in shared memory, and each thread's sum over
// the ranges keeps several loads in flight: a loop of one dependent load per range was 8 µs at 32
// ranges. Each warp also writes its 32 outputs' copies (int8 or f16, what the output projection
// reads), which saves a kernel.
constexpr int kMergeThreads = 128;
constexpr int kMaxMergedRanges = 1024;  // attention_range_count's most
constexpr int kMergeLoadsInFlight = 8;

__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const float* __restrict__ partials, int64_t heads,
                                                              int64_t head_dim, int64_t partial_count,
                                                              float* __restrict__ out, ActivationCopies copies) {
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x, head = blockIdx.y, stride = head_dim + 2;
    const float* first = partials + (row * heads + head) * partial_count * stride;
    __shared__ float weights[kMaxMergedRanges];
    __shared__ float reduced[kMergeThreads / kWarp];
    // M over the ranges that saw keys (l > 0); a range past the visible keys has weight 0.
    float local = -INFINITY;
    for (int64_t s = threadIdx.x; s < partial_count; s += kMergeThreads)
        if (first[s * stride + 1] > 0.0f) local = fmaxf(local, first[s * stride]);
    local = warp_max(local);
    if (threadIdx.x % kWarp == 0) reduced[threadIdx.x / kWarp] = local;
    __syncthreads();
    float largest = -INFINITY;
    for (int w = 0; w < kMergeThreads / kWarp; ++w) largest = fmaxf(largest, reduced[w]);
    __syncthreads();  // before `reduced` is reused
    float denominator = 0.0f;
    for (int64_t s = threadIdx.x; s < partial_count; s += kMergeThreads) {
        const float* p = first + s * stride;
        const float w = p[1] > 0.0f ? expf(p[0] - largest) : 0.0f;
        weights[s] = w;
        denominator += w * p[1];
    }
    denominator = warp_sum(denominator);
    if (threadIdx.x % kWarp == 0) reduced[threadIdx.x / kWarp] = denominator;
    __syncthreads();
    denominator = 0.0f;
    for (int w = 0; w < kMergeThreads / kWarp; ++w) denominator += reduced[w];
    const float inverse = 1.0f / denominator;
    for (int64_t dim = threadIdx.x; dim < head_dim; dim += blockDim.x) {
        float numerator = 0.0f;
        int64_t s = 0;
        for (; s + kMergeLoadsInFlight <= partial_count; s += kMergeLoadsInFlight) {
            float loaded[kMergeLoadsInFlight];
#pragma unroll
            for (int i = 0; i < kMergeLoadsInFlight; ++i) loaded[i] = first[(s + i) * stride + 2 + dim];
#pragma unroll
            for (int i = 0; i < kMergeLoadsInFlight; ++i) numerator += weights[s + i] * loaded[i];
        }
        for (; s < partial_count; ++s) numerator += weights[s] * first[s * stride + 2 + dim];
        const float result = numerator * inverse;
        const int64_t at = (row * heads + head) * head_dim + dim;
        out[at] = result;
        // head_dim is a multiple of 32: every warp here holds one whole block of the row.
        write_copies(copies, result, threadIdx.x % kWarp, at);
    }
}

// Prompt attention (more than kMaxMatvecTokens rows) runs its two products on cuBLAS's tensor
// cores (see CudaBackend::attention); these kernels feed them: a q8_0 cache's rows as f16, and the
// causal softmax of the score matrices, rewritten in place as f16 probabilities.
__global__ void kv_to_f16_kernel(KvRows kv, int64_t head_dim, int64_t keys, const int32_t* __restrict__ table,
                                 __half* __restrict__ out) {
    wait_for_previous_kernel();
    const int64_t kv_head = blockIdx.y;
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= keys * head_dim) return;
    const int64_t position = i / head_dim;
    const int dim = static_cast<int>(i % head_dim);
    const int64_t slot = slot_in_table(table, position);
    out[(kv_head * keys + position) * head_dim + dim] = __float2half_rn(kv_value(kv, kv_row(kv, kv_head, slot), dim));
}

// Block (row, matrix): scores of row `row` of matrix `matrix` at (matrix * rows + row) * stride
// floats; key k counts where k <= positions[row]. The f16 result p[k] takes bytes 2k, 2k + 1 of
// the row, which overlap only scores already read (the first chunk reads all of its own before
// any thread writes).
constexpr int kSoftmaxThreads = 256;

__global__ void __launch_bounds__(kSoftmaxThreads)
    causal_softmax_to_f16_kernel(float* __restrict__ scores, int64_t rows, int64_t keys, int64_t stride,
                                 const int32_t* __restrict__ positions, float scale) {
    wait_for_previous_kernel();
    const int64_t row = blockIdx.x, matrix = blockIdx.y;
    float* s = scores + (matrix * rows + row) * stride;
    __half* p = reinterpret_cast<__half*>(s);
    const int64_t visible = min(static_cast<int64_t>(positions[row]) + 1, keys);
    // Running max and sum of exponentials, per thread, then merged over the block.
    float largest = -INFINITY, sum = 0.0f;
    for (int64_t k = threadIdx.x; k < visible; k += kSoftmaxThreads) {
        const float v = s[k] * scale;
        if (v > largest) {
            sum = sum * expf(largest - v) + 1.0f;
            largest = v;
        } else {
            sum += expf(v - largest);
        }
    }
    __shared__ float maxima[kSoftmaxThreads / kWarp], sums[kSoftmaxThreads / kWarp];
    const float block_largest_in_warp = warp_max(largest);
    sum = warp_sum(largest == -INFINITY ? 0.0f : sum * expf(largest - block_largest_in_warp));
    const int warp = threadIdx.x / kWarp;
    if (threadIdx.x % kWarp == 0) {
        maxima[warp] = block_largest_in_warp;
        sums[warp] = sum;
    }
    __syncthreads();
    float block_largest = -INFINITY, block_sum = 0.0f;
    for (int w = 0; w < kSoftmaxThreads / kWarp; ++w) block_largest = fmaxf(block_largest, maxima[w]);
    for (int w = 0; w < kSoftmaxThreads / kWarp; ++w)
        if (maxima[w] != -INFINITY) block_sum += sums[w] * expf(maxima[w] - block_largest);
    const float inverse_sum = 1.0f / block_sum;
    for (int64_t first = 0; first < keys; first += kSoftmaxThreads) {
        const int64_t k = first + threadIdx.x;
        const float probability = k < visible ? expf(s[k] * scale - block_largest) * inverse_sum : 0.0f;
        __syncthreads();  // every score of this chunk is read before any probability lands
        if (k < keys) p[k] = __float2half_rn(probability);
    }
}

}  // namespace

void store_kv(KvRows keys, KvRows values, const float* k, const float* v, int64_t rows, int64_t kv_heads,
              int64_t head_dim, const int32_t* positions, KvPages pages, Stream stream) {
    launch(store_kv_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(kv_heads)),
           static_cast<unsigned>(head_dim), stream, keys, values, k, v, kv_heads, head_dim, positions, pages);
}

void attention(KvRows keys, KvRows values, const float* q, int64_t rows, int64_t heads, int64_t kv_heads,
               int64_t head_dim, const int32_t* positions, KvPages pages, int64_t capacity, float scale, float* scratch,
               float* out, ActivationCopies copies, Stream stream) {
    const int64_t ranges = attention_range_count(rows, heads, capacity);
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(heads), static_cast<unsigned>(ranges));
    const int64_t group = heads / kv_heads;
    const dim3 group_grid(static_cast<unsigned>(rows), static_cast<unsigned>(kv_heads), static_cast<unsigned>(ranges));
    // One range (many rows: 64 streams): a group kernel writes the outputs itself.
    const bool in_place = ranges == 1;
    const auto by_group = [&](auto kernel) {
        launch(kernel, group_grid, kWarp * kWarpsPerBlock, stream, keys, values, q, heads, kv_heads, positions, pages,
               scale, scratch, in_place ? out : nullptr, in_place ? copies : ActivationCopies{});
    };
    bool grouped = true;
    if (group == 4 && head_dim == 128) by_group(attention_group_kernel<4, 4>);
    else if (group == 4 && head_dim == 64) by_group(attention_group_kernel<4, 2>);
    else if (group == 8 && head_dim == 128) by_group(attention_group_kernel<8, 4>);
    else if (group == 2 && head_dim == 128) by_group(attention_group_kernel<2, 4>);
    else {
        grouped = false;
        launch(attention_kernel, grid, kWarp * kWarpsPerBlock, stream, keys, values, q, heads, kv_heads, head_dim,
               positions, pages, scale, scratch);
    }
    if (grouped && in_place) return;
    launch(merge_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(heads)), kMergeThreads, stream,
           scratch, heads, head_dim, ranges, out, copies);
}

void kv_to_f16(KvRows kv, int64_t kv_heads, int64_t head_dim, int64_t keys, const int32_t* table, uint16_t* out,
               Stream stream) {
    constexpr int kThreads = 256;
    const dim3 grid(static_cast<unsigned>((keys * head_dim + kThreads - 1) / kThreads), static_cast<unsigned>(kv_heads));
    launch(kv_to_f16_kernel, grid, kThreads, stream, kv, head_dim, keys, table, reinterpret_cast<__half*>(out));
}

void causal_softmax_to_f16(float* scores, int64_t matrices, int64_t rows, int64_t keys, int64_t stride,
                           const int32_t* positions, float scale, Stream stream) {
    launch(causal_softmax_to_f16_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(matrices)),
           kSoftmaxThreads, stream, scores, rows, keys, stride, positions, scale);
}

void rope_and_store_kv(KvRows keys, KvRows values, float* q, float* k, const float* v, int64_t rows, int64_t heads,
                       int64_t kv_heads, int64_t head_dim, int64_t rotary_dims, const int32_t* positions,
                       KvPages pages, const double* inverse_frequencies, double freq_scale, Stream stream) {
    launch(rope_and_store_kv_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(heads + kv_heads)),
           static_cast<unsigned>(head_dim), stream, keys, values, q, k, v, heads, kv_heads, head_dim, rotary_dims,
           positions, pages, inverse_frequencies, freq_scale);
}

namespace {

__global__ void prompt_attention_pointers_kernel(const __half* k16, const __half* v16, int64_t kv_head_stride,
                                                 const __half* q16, float* scores, int64_t score_matrix_floats,
                                                 float* out, int64_t head_dim, int64_t first_head, int64_t count,
                                                 int64_t group, void** pointers) {
    wait_for_previous_kernel();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count) return;
    const int64_t head = first_head + i, kv_head = head / group;
    float* score = scores + i * score_matrix_floats;
    pointers[i] = const_cast<__half*>(k16 + kv_head * kv_head_stride);
    pointers[count + i] = const_cast<__half*>(q16 + head * head_dim);
    pointers[2 * count + i] = score;
    pointers[3 * count + i] = const_cast<__half*>(v16 + kv_head * kv_head_stride);
    pointers[4 * count + i] = score;  // the probabilities, as f16 over the scores
    pointers[5 * count + i] = out + head * head_dim;
}

}  // namespace

void prompt_attention_pointers(const uint16_t* k16, const uint16_t* v16, int64_t kv_head_stride, const uint16_t* q16,
                               float* scores, int64_t score_matrix_floats, float* out, int64_t head_dim,
                               int64_t first_head, int64_t count, int64_t group, void** pointers, Stream stream) {
    constexpr int kThreads = 64;
    launch(prompt_attention_pointers_kernel, static_cast<unsigned>((count + kThreads - 1) / kThreads), kThreads, stream,
           reinterpret_cast<const __half*>(k16), reinterpret_cast<const __half*>(v16), kv_head_stride,
           reinterpret_cast<const __half*>(q16), scores, score_matrix_floats, out, head_dim, first_head, count, group,
           pointers);
}

}  // namespace hearth::cuda
