// Activations rounded to int8 in blocks of 32 (q8_1), one warp per block: what the int8
// matrix-vector kernels read. quantize_activations does only this; RMSNorm and SwiGLU do it as
// they write their output, which saves a pass (and a launch) before each matmul they feed.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

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

}  // namespace hearth::cuda
