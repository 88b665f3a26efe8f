#include "quant/iq4_xs.h"

#include <algorithm>
#include <cmath>

#include "quant/fp16.h"
#include "quant/iq4_grid.h"
#include "quant/rounding.h"

namespace hearth::quant {
namespace {

constexpr int kSubBlocks = 8;
constexpr int kSubBlockElems = 32;

int unpack_scale(const BlockIQ4XS& block, int j) {
    const int low = (block.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
    const int high = (block.scales_h >> (2 * j)) & 3;
    return (low | (high << 4)) - 32;
}

}  // namespace

void dequantize_row_iq4_xs(const BlockIQ4XS* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockIQ4XS::kElems; ++b) {
        const BlockIQ4XS& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        float* y = out + b * BlockIQ4XS::kElems;
        for (int j = 0; j < kSubBlocks; ++j) {
            const float sub_scale = d * unpack_scale(block, j);
            const uint8_t* qs = block.qs + 16 * j;
            for (int l = 0; l < 16; ++l) {
                y[l] = sub_scale * kIq4Grid[qs[l] & 0x0f];
                y[l + 16] = sub_scale * kIq4Grid[qs[l] >> 4];
            }
            y += kSubBlockElems;
        }
    }
}

void quantize_row_iq4_xs(const float* in, BlockIQ4XS* blocks, int64_t n) {
    for (int64_t b = 0; b < n / BlockIQ4XS::kElems; ++b) {
        const float* x = in + b * BlockIQ4XS::kElems;
        BlockIQ4XS& block = blocks[b];
        float scales[kSubBlocks];
        float max_scale = 0;
        float max_abs_scale = 0;
        for (int j = 0; j < kSubBlocks; ++j) {
            scales[j] = search_iq4_block_scale(x + kSubBlockElems * j);
            if (std::fabs(scales[j]) > max_abs_scale) {
                max_abs_scale = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }

        // The largest-magnitude sub-block scale maps to -32; an all-zero block gives d = -0.
        const float d = -max_scale / 32;
        const float inverse_d = d != 0.0f ? 1 / d : 0.0f;
        block.d = fp32_to_fp16(d);
        block.scales_h = 0;
        std::fill(block.scales_l, block.scales_l + 4, uint8_t{0});
        for (int j = 0; j < kSubBlocks; ++j) {
            const int level = std::clamp(nearest_int(inverse_d * scales[j]), -32, 31);
            // Indices are chosen against d (unrounded) times the 6-bit scale, as in ggml.
            const float sub_scale = d * level;
            const float inverse_sub_scale = sub_scale != 0.0f ? 1 / sub_scale : 0.0f;
            uint8_t levels[kSubBlockElems];
            for (int i = 0; i < kSubBlockElems; ++i) {
                levels[i] =
                    static_cast<uint8_t>(nearest_iq4_level(inverse_sub_scale * x[kSubBlockElems * j + i]));
            }
            pack_iq4_levels(levels, block.qs + 16 * j);
            const int biased = level + 32;
            block.scales_l[j / 2] |= static_cast<uint8_t>((biased & 0x0f) << (4 * (j % 2)));
            block.scales_h |= static_cast<uint16_t>((biased >> 4) << (2 * j));
        }
    }
}

}  // namespace hearth::quant
