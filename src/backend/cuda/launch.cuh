// How the backend's kernels are launched: with programmatic dependent launch (Hopper), so that a
// kernel's blocks are scheduled while the kernel before it drains, and a decode step's ~700 small
// launches do not each pay the full gap between kernels. Every kernel launched this way calls
// wait_for_previous_kernel() before it touches memory: the previous kernel's writes are visible
// after it, and nothing the previous kernel still reads is overwritten before it.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/kernels.h"

namespace hearth::cuda {

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    cudaGridDependencySynchronize();
#endif
}

// Errors surface through cudaGetLastError, which the backend checks after every op. With
// cluster_blocks > 1 (Hopper), consecutive runs of that many blocks form a thread-block cluster,
// scheduled together and able to read each other's shared memory. `shared_bytes` of dynamic
// shared memory a block (beyond 48 KiB only for a kernel that has been allowed them).
template <typename... Parameters, typename... Arguments>
void launch_in_clusters(void (*kernel)(Parameters...), dim3 grid, dim3 block, unsigned cluster_blocks,
                        size_t shared_bytes, Stream stream, Arguments&&... arguments) {
    cudaLaunchAttribute attributes[2] = {};
    attributes[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[0].val.programmaticStreamSerializationAllowed = 1;
    attributes[1].id = cudaLaunchAttributeClusterDimension;
    attributes[1].val.clusterDim.x = cluster_blocks;
    attributes[1].val.clusterDim.y = 1;
    attributes[1].val.clusterDim.z = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = shared_bytes;
    config.stream = stream;
    config.attrs = attributes;
    config.numAttrs = cluster_blocks > 1 ? 2 : 1;
    cudaLaunchKernelEx(&config, kernel, std::forward<Arguments>(arguments)...);
}

template <typename... Parameters, typename... Arguments>
void launch(void (*kernel)(Parameters...), dim3 grid, dim3 block, Stream stream, Arguments&&... arguments) {
    launch_in_clusters(kernel, grid, block, 1, 0, stream, std::forward<Arguments>(arguments)...);
}

}  // namespace hearth::cuda
