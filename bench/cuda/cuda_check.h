// The CUDA benchmarks stop at the first CUDA error, naming the benchmark, what failed and why.
#pragma once

#include <cuda_runtime.h>
#include <fmt/core.h>

#include <cstdlib>

namespace hearth::bench {

inline void exit_on_cuda_error(const char* program, cudaError_t status, const char* what) {
    if (status == cudaSuccess) return;
    fmt::print(stderr, "{}: {}: {}\n", program, what, cudaGetErrorString(status));
    std::exit(1);
}

}  // namespace hearth::bench
