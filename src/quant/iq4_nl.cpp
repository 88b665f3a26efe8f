#include "quant/iq4_nl.h"

#include "quant/fp16.h"
#include "quant/iq4_grid.h"

namespace hearth::quant {

void dequantize_row_iq4_nl(const BlockIQ4NL* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockIQ4NL::kElems; ++b) {
        const BlockIQ4NL& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        float* y = out + b * BlockIQ4NL::kElems;
        for (int j = 0; j < 16; ++j) {
            y[j] = d * kIq4Grid[block.qs[j] & 0x0f];
            y[j + 16] = d * kIq4Grid[block.qs[j] >> 4];
        }
    }
}

void quantize_row_iq4_nl(const float* in, BlockIQ4NL* blocks, int64_t n) {
    for (int64_t b = 0; b < n / BlockIQ4NL::kElems; ++b) {
        const float* x = in + b * BlockIQ4NL::kElems;
        BlockIQ4NL& block = blocks[b];
        const float scale = search_iq4_block_scale(x);
        block.d = fp32_to_fp16(scale);
        // Indices are chosen against the unrounded scale, as in ggml.
        const float inverse_scale = scale != 0.0f ? 1 / scale : 0.0f;
        uint8_t levels[BlockIQ4NL::kElems];
        for (int j = 0; j < BlockIQ4NL::kElems; ++j) {
            levels[j] = static_cast<uint8_t>(nearest_iq4_level(inverse_scale * x[j]));
        }
        pack_iq4_levels(levels, block.qs);
    }
}

}  // namespace hearth::quant
