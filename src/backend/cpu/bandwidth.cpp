#include "backend/cpu/bandwidth.h"

#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "common/cpu_features.h"

namespace hearth::cpu {
namespace {

// 64-byte loads, four independent accumulators, so the loop is bound by the loads alone.
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint8_t* data, size_t bytes) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= bytes; i += 128) {
        a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i + 32)));
        c = _mm256_add_epi64(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i + 64)));
        d = _mm256_add_epi64(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i + 96)));
    }
    const __m256i sum = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sum);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t sum_scalar(const uint8_t* data, size_t bytes) {
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 16 <= bytes; i += 16) {
        uint64_t x, y;
        std::memcpy(&x, data + i, 8);
        std::memcpy(&y, data + i + 8, 8);
        a += x;
        b += y;
    }
    return a + b;
}

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int repetitions) {
    constexpr size_t kAlignment = 4096;
    const int threads = pool.thread_count();
    const size_t slice = bytes / threads / kAlignment * kAlignment;
    auto* memory = static_cast<uint8_t*>(std::aligned_alloc(kAlignment, slice * threads));
    std::unique_ptr<uint8_t, decltype(&std::free)> owner(memory, &std::free);
    // Each thread first touches its own slice, so its pages sit on its memory node.
    pool.run(threads, [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) std::memset(memory + t * slice, static_cast<int>(t + 1), slice);
    });
    const bool avx2 = cpu_features().avx2;
    std::vector<uint64_t> sinks(threads);
    double best = 0;
    for (int r = 0; r < repetitions; ++r) {
        const auto start = std::chrono::steady_clock::now();
        pool.run(threads, [&](int64_t begin, int64_t end, int) {
            for (int64_t t = begin; t < end; ++t)
                sinks[t] += avx2 ? sum_avx2(memory + t * slice, slice) : sum_scalar(memory + t * slice, slice);
        });
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::max(best, static_cast<double>(slice * threads) / seconds);
    }
    volatile uint64_t keep = 0;  // the sums must not be optimized away
    for (uint64_t s : sinks) keep = keep + s;
    return best;
}

}  // namespace hearth::cpu
