// What a kernel launch costs inside a decode step when the kernel has nothing to do. A
// single-stream step is ~350 launches (11 a layer), and each product of the kernel bench takes
// ~3 us more than its bytes: this separates the launch from the kernel. It times CUDA-graph
// replays of a chain of launches of a kernel that only waits for the one before (as every backend
// kernel does), by grid size, with programmatic dependent launch as the backend launches and
// without it; then the same kernel with each thread reading 16 bytes that L2 does not hold (one
// round trip to memory a launch, as every product's first loads).
//   cuda_launch_bench [--launches N]
#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cuda/launch.cuh"
#include "cuda_check.h"
#include "graph_timing.h"

namespace {

namespace cuda = hearth::cuda;

void check(cudaError_t status, const char* what) {
    hearth::bench::exit_on_cuda_error("cuda_launch_bench", status, what);
}

constexpr int kThreads = 128;  // four warps, as the matrix-vector kernels' blocks

// With `data`, each thread reads the 16 bytes at its index past `offset`; the xor is stored only
// if it equals a value no data here holds, so the read is kept and costs no write.
__global__ void wait_kernel(const int4* __restrict__ data, int64_t offset, int* sink) {
    cuda::wait_for_previous_kernel();
    if (data == nullptr) return;
    const int4 v = data[offset + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x];
    if ((v.x ^ v.y ^ v.z ^ v.w) == 0x7fedcba9) *sink = 1;
}

void launch_plain(dim3 grid, cudaStream_t stream, const int4* data, int64_t offset, int* sink) {
    wait_kernel<<<grid, kThreads, 0, stream>>>(data, offset, sink);
}

// Microseconds a launch: the median of 9 replays of a graph of `launches` launches.
double time_chain(int launches, unsigned blocks, bool dependent_launch, const int4* data, int64_t vectors, int* sink,
                  cudaStream_t stream) {
    const int64_t per_launch = static_cast<int64_t>(blocks) * kThreads;
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
    int64_t offset = 0;
    for (int i = 0; i < launches; ++i) {
        // Each launch reads where the last ones did not: the buffer is far larger than L2.
        if (data != nullptr && offset + per_launch > vectors) offset = 0;
        if (dependent_launch)
            cuda::launch(wait_kernel, dim3(blocks), dim3(kThreads), stream, data, offset, sink);
        else
            launch_plain(dim3(blocks), stream, data, offset, sink);
        offset += per_launch;
    }
    const double us = hearth::bench::median_replay_us(stream, launches);
    if (us < 0) {
        fmt::print(stderr, "cuda_launch_bench: replaying the launches: {}\n", cudaGetErrorString(cudaGetLastError()));
        std::exit(1);
    }
    return us;
}

}  // namespace

int main(int argc, char** argv) {
    int launches = 352;  // a single-stream step of Llama 3.1 8B: 11 a layer, 32 layers
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--launches") == 0 && i + 1 < argc) {
            launches = std::max(1, std::atoi(argv[++i]));
        } else {
            fmt::print(stderr, "usage: cuda_launch_bench [--launches N]\n");
            return 2;
        }
    }
    cudaStream_t stream;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    const int64_t vectors = (int64_t{1} << 30) / 16;  // 1 GiB
    int4* data = nullptr;
    int* sink = nullptr;
    check(cudaMalloc(&data, vectors * 16), "1 GiB to read");
    check(cudaMemset(data, 0, vectors * 16), "1 GiB to read");
    check(cudaMalloc(&sink, sizeof(int)), "sink");
    fmt::print("{} launches a graph, {} threads a block; microseconds a launch (median of 9 replays)\n\n", launches,
               kThreads);
    fmt::print("| blocks | empty, dependent launch | empty, plain launch | 16 B a thread from memory, dependent launch |\n");
    fmt::print("| ---: | ---: | ---: | ---: |\n");
    for (const unsigned blocks : {1u, 132u, 1024u, 4096u, 7168u}) {
        const double dependent = time_chain(launches, blocks, true, nullptr, 0, sink, stream);
        const double plain = time_chain(launches, blocks, false, nullptr, 0, sink, stream);
        const double reading = time_chain(launches, blocks, true, data, vectors, sink, stream);
        fmt::print("| {} | {:.2f} | {:.2f} | {:.2f} |\n", blocks, dependent, plain, reading);
    }
    cudaFree(sink);
    cudaFree(data);
    cudaStreamDestroy(stream);
    return 0;
}
