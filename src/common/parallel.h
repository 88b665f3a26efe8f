// A plain fork-join loop for coarse work (quantizing tensors, generating weights). The
// low-latency pool for per-token kernels is the CPU backend's, not this.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace hearth {

inline int default_thread_count() { return std::max(1u, std::thread::hardware_concurrency()); }

// Calls body(begin, end) on `threads` threads over contiguous slices of [0, count), each slice
// a multiple of `grain` long (except the last). The first exception thrown is rethrown.
template <typename Body>
void parallel_for(int64_t count, int threads, int64_t grain, Body&& body) {
    if (count <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    const int64_t grains = (count + grain - 1) / grain;
    const int64_t workers = std::clamp<int64_t>(threads, 1, grains);
    if (workers == 1) {
        body(int64_t{0}, count);
        return;
    }
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(workers);
    for (int64_t w = 0; w < workers; ++w) {
        const int64_t begin = std::min(count, grains * w / workers * grain);
        const int64_t end = std::min(count, grains * (w + 1) / workers * grain);
        pool.emplace_back([&, w, begin, end] {
            try {
                if (begin < end) body(begin, end);
            } catch (...) {
                errors[w] = std::current_exception();
            }
        });
    }
    for (auto& thread : pool) thread.join();
    for (auto& error : errors) {
        if (error) std::rethrow_exception(error);
    }
}

}  // namespace hearth
