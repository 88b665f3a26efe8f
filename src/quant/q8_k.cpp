#include "quant/q8_k.h"

#include <algorithm>

#include "quant/group_stats.h"
#include "quant/rounding.h"

namespace hearth::quant {

void dequantize_row_q8_k(const BlockQ8K* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ8K::kElems; ++b) {
        const BlockQ8K& block = blocks[b];
        float* y = out + b * BlockQ8K::kElems;
        for (int j = 0; j < BlockQ8K::kElems; ++j) y[j] = block.d * block.qs[j];
    }
}

void quantize_row_q8_k(const float* in, BlockQ8K* blocks, int64_t n) {
    constexpr int kGroup = 16;
    for (int64_t b = 0; b < n / BlockQ8K::kElems; ++b) {
        const float* x = in + b * BlockQ8K::kElems;
        BlockQ8K& block = blocks[b];
        const LargestMagnitude largest = largest_magnitude(x, BlockQ8K::kElems);
        if (largest.magnitude == 0.0f) {
            block = BlockQ8K{};
            continue;
        }
        // -127 (not -128) so that negating a quant never overflows (IQ2 dot products rely on it).
        const float inverse_scale = -127.0f / largest.value;
        for (int j = 0; j < BlockQ8K::kElems; ++j) {
            block.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(inverse_scale * x[j])));
        }
        for (int g = 0; g < BlockQ8K::kElems / kGroup; ++g) {
            int sum = 0;
            for (int j = 0; j < kGroup; ++j) sum += block.qs[g * kGroup + j];
            block.bsums[g] = static_cast<int16_t>(sum);
        }
        block.d = 1 / inverse_scale;
    }
}

}  // namespace hearth::quant
