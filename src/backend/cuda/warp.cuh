// Reductions across the 32 lanes of a warp, the result in every lane.
#pragma once

#include <cuda_runtime.h>

namespace hearth::cuda {

constexpr int kWarp = 32;

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = kWarp / 2; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

}  // namespace hearth::cuda
