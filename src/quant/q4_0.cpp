#include "quant/q4_0.h"

#include <algorithm>

#include "quant/fp16.h"
#include "quant/group_stats.h"

namespace hearth::quant {

void dequantize_row_q4_0(const BlockQ4_0* blocks, float* out, int64_t n) {
    constexpr int kHalf = BlockQ4_0::kElems / 2;
    for (int64_t b = 0; b < n / BlockQ4_0::kElems; ++b) {
        const BlockQ4_0& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        float* y = out + b * BlockQ4_0::kElems;
        for (int j = 0; j < kHalf; ++j) {
            y[j] = ((block.qs[j] & 0x0f) - 8) * d;
            y[j + kHalf] = ((block.qs[j] >> 4) - 8) * d;
        }
    }
}

void quantize_row_q4_0(const float* in, BlockQ4_0* blocks, int64_t n) {
    constexpr int kHalf = BlockQ4_0::kElems / 2;
    for (int64_t b = 0; b < n / BlockQ4_0::kElems; ++b) {
        const float* x = in + b * BlockQ4_0::kElems;
        BlockQ4_0& block = blocks[b];
        // The largest-magnitude element maps to level -8 exactly (the scale takes its sign).
        const float d = largest_magnitude(x, BlockQ4_0::kElems).value / -8;
        const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
        block.d = fp32_to_fp16(d);
        for (int j = 0; j < kHalf; ++j) {
            // Truncating x/d + 8.5 rounds half up to a level in 0..15.
            const int low = std::min(15, static_cast<int>(x[j] * inverse_d + 8.5f));
            const int high = std::min(15, static_cast<int>(x[j + kHalf] * inverse_d + 8.5f));
            block.qs[j] = static_cast<uint8_t>(low | (high << 4));
        }
    }
}

}  // namespace hearth::quant
