// How fast this machine reads memory: the ceiling decode speed is held against (weights are
// read once per token, so tok/s <= read bandwidth / bytes per token).
#pragma once

#include <cstddef>

#include "backend/cpu/thread_pool.h"

namespace hearth::cpu {

// Reads a buffer of `bytes` (far larger than the caches) with every thread of the pool, each its
// own contiguous slice, `repetitions` times, and returns the best rate in bytes per second.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{1} << 30, int repetitions = 5);

}  // namespace hearth::cpu
