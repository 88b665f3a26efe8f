// Activations rounded to int8 in blocks of 32 (q8_1), one warp per block: what the int8
// matrix-vector kernels read. quantize_activations does only this; RMSNorm, SwiGLU and the
// attention merge do it (or write f16, ActivationCopies) as they write their output, which saves a
// pass (and a launch) before each matmul they feed.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels.h"
#include "backend/cuda/warp.cuh"

namespace hearth::cuda {

constexpr int kActivationBlock = 32;

// Lane l of a warp holds value l of a block: d = max |x| / 127, q = round(x / d), and the block's
// (d, d * sum of q).
__device__ __forceinline__ void quantize_block(float v, int lane, int8_t* values, float2* scale) {
    const float largest = warp_max(fabsf(v));
    const float d = largest / 127.0f;
    const int q = largest == 0.0f ? 0 : __float2int_rn(v / d);
    values[lane] = static_cast<int8_t>(q);
    const float sum = warp_sum(static_cast<float>(q));
    if (lane == 0) *scale = make_float2(d, d * sum);
}

// Value y of index i (lane `lane` of its 32-value block, i counted from the activations' start)
// into the copies. Every lane of the warp calls it (the int8 rounding reduces over the block).
__device__ __forceinline__ void write_copies(const ActivationCopies& copies, float y, int lane, int64_t i) {
    if (copies.values)
        quantize_block(y, lane, copies.values + (i - lane), reinterpret_cast<float2*>(copies.block_scales) + i / 32);
    if (copies.f16) reinterpret_cast<__half*>(copies.f16)[i] = __float2half_rn(y);
}

}  // namespace hearth::cuda
