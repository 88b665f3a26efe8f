#include "quant/q3_k.h"

#include <algorithm>
#include <cmath>

#include "quant/fp16.h"
#include "quant/q2_k.h"
#include "quant/rounding.h"
#include "quant/scale_search.h"

namespace hearth::quant {
namespace {

constexpr int kSubBlocks = 16;
constexpr int kSubBlockElems = 16;

// Signed scale of sub-block j, -32..31.
int unpack_scale(const uint8_t packed[12], int j) {
    const int low = j < 8 ? (packed[j] & 0x0f) : (packed[j - 8] >> 4);
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

void pack_scales(const int8_t scales[kSubBlocks], uint8_t packed[12]) {
    std::fill(packed, packed + 12, uint8_t{0});
    for (int j = 0; j < kSubBlocks; ++j) {
        const int biased = scales[j] + 32;
        packed[j % 8] |= static_cast<uint8_t>((biased & 0x0f) << (j < 8 ? 0 : 4));
        packed[8 + j % 4] |= static_cast<uint8_t>((biased >> 4) << (2 * (j / 4)));
    }
}

// Splits 3-bit levels 0..7 into the high-bit mask and the 2-bit quants.
void pack_3bit_levels(const int8_t levels[256], BlockQ3K* block) {
    uint8_t low_bits[BlockQ3K::kElems];
    std::fill(block->hmask, block->hmask + 32, uint8_t{0});
    for (int e = 0; e < BlockQ3K::kElems; ++e) {
        int level = levels[e];
        if (level > 3) {
            block->hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
            level -= 4;
        }
        low_bits[e] = static_cast<uint8_t>(level);
    }
    pack_2bit_levels(low_bits, block->qs);
}

}  // namespace

void dequantize_row_q3_k(const BlockQ3K* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ3K::kElems; ++b) {
        const BlockQ3K& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        float* y = out + b * BlockQ3K::kElems;
        for (int e = 0; e < BlockQ3K::kElems; e += kSubBlockElems) {
            const float sub_scale = d * unpack_scale(block.scales, e / kSubBlockElems);
            const uint8_t* q = block.qs + 32 * (e / 128) + e % 32;
            const uint8_t* hmask = block.hmask + e % 32;
            const int shift = 2 * ((e % 128) / 32);
            const uint8_t high_bit = static_cast<uint8_t>(1u << (e / 32));
            for (int l = 0; l < kSubBlockElems; ++l) {
                // A clear high bit means the level is below 4: q - 4.
                const int level = ((q[l] >> shift) & 3) - ((hmask[l] & high_bit) != 0 ? 0 : 4);
                y[e + l] = sub_scale * level;
            }
        }
    }
}

void quantize_row_q3_k(const float* in, BlockQ3K* blocks, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ3K::kElems; ++b) {
        const float* x = in + b * BlockQ3K::kElems;
        BlockQ3K& block = blocks[b];
        int8_t levels[BlockQ3K::kElems];
        float scales[kSubBlocks];
        float max_scale = 0;
        float max_abs_scale = 0;
        for (int j = 0; j < kSubBlocks; ++j) {
            scales[j] =
                make_q3_quants(kSubBlockElems, 4, x + kSubBlockElems * j, levels + kSubBlockElems * j);
            if (std::fabs(scales[j]) > max_abs_scale) {
                max_abs_scale = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }

        // 6-bit signed scales relative to the largest, which maps to -32.
        int8_t quantized_scales[kSubBlocks] = {};
        block.d = 0;
        if (max_scale != 0.0f) {
            const float inverse_scale = -32.0f / max_scale;
            for (int j = 0; j < kSubBlocks; ++j) {
                // ggml narrows to int8 before clamping.
                const auto level = static_cast<int8_t>(nearest_int(inverse_scale * scales[j]));
                quantized_scales[j] = static_cast<int8_t>(std::clamp<int>(level, -32, 31));
            }
            block.d = fp32_to_fp16(1 / inverse_scale);
        } else {
            // All scales zero: stored as -32 + 32 = 0 in every field, decoded as -32.
            std::fill(quantized_scales, quantized_scales + kSubBlocks, int8_t{-32});
        }
        pack_scales(quantized_scales, block.scales);

        // Re-round every value against the scale as stored.
        const float d = fp16_to_fp32(block.d);
        for (int j = 0; j < kSubBlocks; ++j) {
            const float sub_scale = d * unpack_scale(block.scales, j);
            if (sub_scale == 0.0f) continue;
            for (int i = 0; i < kSubBlockElems; ++i) {
                const int level = nearest_int(x[kSubBlockElems * j + i] / sub_scale);
                levels[kSubBlockElems * j + i] = static_cast<int8_t>(std::clamp(level, -4, 3) + 4);
            }
        }
        pack_3bit_levels(levels, &block);
    }
}

}  // namespace hearth::quant
