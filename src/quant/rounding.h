// Rounding of floats to integer levels as llama.cpp's K-quant and IQ quantizers do it.
#pragma once

#include <bit>
#include <cstdint>

namespace hearth::quant {

// Nearest integer, ties to even, for |value| <= 2^22 - 1 (larger values give garbage, as in
// ggml). Adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits: the float
// adder does the rounding, so the result is exactly ggml's nearest_int.
inline int nearest_int(float value) {
    constexpr float kRoundingBias = 12582912.0f;  // 1.5 * 2^23
    const uint32_t bits = std::bit_cast<uint32_t>(value + kRoundingBias);
    return static_cast<int>(bits & 0x007fffff) - 0x00400000;
}

}  // namespace hearth::quant
