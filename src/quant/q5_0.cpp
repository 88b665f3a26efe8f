#include "quant/q5_0.h"

#include <algorithm>

#include "quant/fp16.h"
#include "quant/group_stats.h"

namespace hearth::quant {

uint32_t load_high_bits(const uint8_t qh[4]) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
           static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

void store_high_bits(uint32_t mask, uint8_t qh[4]) {
    for (int i = 0; i < 4; ++i) qh[i] = static_cast<uint8_t>(mask >> (8 * i));
}

void pack_5bit_levels(const uint8_t levels[32], uint8_t qs[16], uint8_t qh[4]) {
    uint32_t high_bits = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t low = levels[j];
        const uint8_t high = levels[j + 16];
        qs[j] = static_cast<uint8_t>((low & 0x0f) | ((high & 0x0f) << 4));
        high_bits |= static_cast<uint32_t>((low >> 4) & 1) << j;
        high_bits |= static_cast<uint32_t>((high >> 4) & 1) << (j + 16);
    }
    store_high_bits(high_bits, qh);
}

void dequantize_row_q5_0(const BlockQ5_0* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ5_0::kElems; ++b) {
        const BlockQ5_0& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        const uint32_t high_bits = load_high_bits(block.qh);
        float* y = out + b * BlockQ5_0::kElems;
        for (int j = 0; j < 16; ++j) {
            y[j] = (q5_level(block.qs, high_bits, j, 0) - 16) * d;
            y[j + 16] = (q5_level(block.qs, high_bits, j, 1) - 16) * d;
        }
    }
}

void quantize_row_q5_0(const float* in, BlockQ5_0* blocks, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ5_0::kElems; ++b) {
        const float* x = in + b * BlockQ5_0::kElems;
        BlockQ5_0& block = blocks[b];
        // The largest-magnitude element maps to level -16 exactly.
        const float d = largest_magnitude(x, BlockQ5_0::kElems).value / -16;
        const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
        block.d = fp32_to_fp16(d);
        uint8_t levels[BlockQ5_0::kElems];
        for (int j = 0; j < BlockQ5_0::kElems; ++j) {
            levels[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j] * inverse_d + 16.5f)));
        }
        pack_5bit_levels(levels, block.qs, block.qh);
    }
}

}  // namespace hearth::quant
