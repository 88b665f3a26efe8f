#include "quant/q4_1.h"

#include <algorithm>

#include "quant/fp16.h"
#include "quant/group_stats.h"

namespace hearth::quant {

void dequantize_row_q4_1(const BlockQ4_1* blocks, float* out, int64_t n) {
    constexpr int kHalf = BlockQ4_1::kElems / 2;
    for (int64_t b = 0; b < n / BlockQ4_1::kElems; ++b) {
        const BlockQ4_1& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        const float m = fp16_to_fp32(block.m);
        float* y = out + b * BlockQ4_1::kElems;
        for (int j = 0; j < kHalf; ++j) {
            y[j] = (block.qs[j] & 0x0f) * d + m;
            y[j + kHalf] = (block.qs[j] >> 4) * d + m;
        }
    }
}

void quantize_row_q4_1(const float* in, BlockQ4_1* blocks, int64_t n) {
    constexpr int kHalf = BlockQ4_1::kElems / 2;
    constexpr int kMaxLevel = 15;
    for (int64_t b = 0; b < n / BlockQ4_1::kElems; ++b) {
        const float* x = in + b * BlockQ4_1::kElems;
        BlockQ4_1& block = blocks[b];
        const Range range = value_range(x, BlockQ4_1::kElems);
        const float d = (range.max - range.min) / kMaxLevel;
        const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
        block.d = fp32_to_fp16(d);
        block.m = fp32_to_fp16(range.min);
        for (int j = 0; j < kHalf; ++j) {
            const int low = std::min(kMaxLevel, static_cast<int>((x[j] - range.min) * inverse_d + 0.5f));
            const int high =
                std::min(kMaxLevel, static_cast<int>((x[j + kHalf] - range.min) * inverse_d + 0.5f));
            block.qs[j] = static_cast<uint8_t>(low | (high << 4));
        }
    }
}

}  // namespace hearth::quant
