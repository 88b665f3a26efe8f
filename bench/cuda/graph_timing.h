// Timing a chain of calls recorded as one CUDA graph, as the CUDA benchmarks do: replays measure
// the kernels without the host's launch costs, as a decode step's recorded graph runs them.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

namespace hearth::bench {

// Ends the capture the stream began (`calls` calls in it), replays the graph `warmup` times
// untimed and `timed` times timed, and returns the median microseconds a call; a negative number
// when CUDA fails (the caller names what it timed).
inline double median_replay_us(cudaStream_t stream, int calls, int timed = 9, int warmup = 3) {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    if (cudaStreamEndCapture(stream, &graph) != cudaSuccess || cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
        if (graph) cudaGraphDestroy(graph);
        return -1;
    }
    cudaEvent_t start = nullptr, stop = nullptr;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    std::vector<double> times;
    bool failed = false;
    for (int replay = 0; replay < warmup + timed && !failed; ++replay) {
        cudaEventRecord(start, stream);
        failed = cudaGraphLaunch(exec, stream) != cudaSuccess;
        cudaEventRecord(stop, stream);
        failed = failed || cudaEventSynchronize(stop) != cudaSuccess;
        float ms = 0;
        cudaEventElapsedTime(&ms, start, stop);
        if (replay >= warmup) times.push_back(1000.0 * ms / calls);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    if (failed || times.empty()) return -1;
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

}  // namespace hearth::bench
