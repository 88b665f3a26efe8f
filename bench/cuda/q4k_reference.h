// The CPU's reference decoding of a Q4_K row, for the CUDA benches' checks (C++20, as quant's
// headers are; the benches' .cu files build as C++17).
#pragma once

#include <cstdint>

namespace hearth::bench {

// The Q4_K row at `row` (cols / 256 super-blocks), decoded, times int8 values with a scale per 32,
// summed in double.
double q4k_row_times(const uint8_t* row, int64_t cols, const int8_t* values, const float* scales);

}  // namespace hearth::bench
