#include "quant/q5_1.h"

#include "quant/fp16.h"
#include "quant/group_stats.h"
#include "quant/q5_0.h"

namespace hearth::quant {

void dequantize_row_q5_1(const BlockQ5_1* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ5_1::kElems; ++b) {
        const BlockQ5_1& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        const float m = fp16_to_fp32(block.m);
        const uint32_t high_bits = load_high_bits(block.qh);
        float* y = out + b * BlockQ5_1::kElems;
        for (int j = 0; j < 16; ++j) {
            y[j] = q5_level(block.qs, high_bits, j, 0) * d + m;
            y[j + 16] = q5_level(block.qs, high_bits, j, 1) * d + m;
        }
    }
}

void quantize_row_q5_1(const float* in, BlockQ5_1* blocks, int64_t n) {
    constexpr int kMaxLevel = 31;
    for (int64_t b = 0; b < n / BlockQ5_1::kElems; ++b) {
        const float* x = in + b * BlockQ5_1::kElems;
        BlockQ5_1& block = blocks[b];
        const Range range = value_range(x, BlockQ5_1::kElems);
        const float d = (range.max - range.min) / kMaxLevel;
        const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
        block.d = fp32_to_fp16(d);
        block.m = fp32_to_fp16(range.min);
        uint8_t levels[BlockQ5_1::kElems];
        for (int j = 0; j < BlockQ5_1::kElems; ++j) {
            // No clamp (as in ggml): (x - min)/d + 0.5 stays below 32.
            levels[j] = static_cast<uint8_t>((x[j] - range.min) * inverse_d + 0.5f);
        }
        pack_5bit_levels(levels, block.qs, block.qh);
    }
}

}  // namespace hearth::quant
