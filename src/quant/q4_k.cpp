#include "quant/q4_k.h"

#include "quant/fp16.h"

namespace hearth::quant {

void dequantize_row_q4_k(const BlockQ4K* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ4K::kElems; ++b) {
        const BlockQ4K& block = blocks[b];
        const float d = fp16_to_fp32(block.header.d);
        const float dmin = fp16_to_fp32(block.header.dmin);
        float* y = out + b * BlockQ4K::kElems;
        for (int chunk = 0; chunk < 4; ++chunk) {
            const uint8_t* q = block.qs + 32 * chunk;
            const ScaleMin low = unpack_scale_min_k4(block.header.scales, 2 * chunk);
            const ScaleMin high = unpack_scale_min_k4(block.header.scales, 2 * chunk + 1);
            const float d_low = d * low.scale;
            const float min_low = dmin * low.min;
            const float d_high = d * high.scale;
            const float min_high = dmin * high.min;
            for (int l = 0; l < 32; ++l) y[l] = d_low * (q[l] & 0x0f) - min_low;
            for (int l = 0; l < 32; ++l) y[32 + l] = d_high * (q[l] >> 4) - min_high;
            y += 64;
        }
    }
}

void quantize_row_q4_k(const float* in, BlockQ4K* blocks, int64_t n) {
    // llama.cpp's reference search for 4 bits: trial inverse scales (15 - 1 + 0.1k)/range.
    constexpr AffineSearch kSearch{.nmax = 15, .rmin = -1.0f, .rdelta = 0.1f, .nstep = 20, .use_mad = false};
    for (int64_t b = 0; b < n / BlockQ4K::kElems; ++b) {
        BlockQ4K& block = blocks[b];
        uint8_t levels[BlockQ4K::kElems];
        quantize_scale_min_super_block(in + b * BlockQ4K::kElems, kSearch, &block.header, levels);
        for (int chunk = 0; chunk < 4; ++chunk) {
            const uint8_t* chunk_levels = levels + 64 * chunk;
            for (int l = 0; l < 32; ++l) {
                block.qs[32 * chunk + l] =
                    static_cast<uint8_t>(chunk_levels[l] | (chunk_levels[l + 32] << 4));
            }
        }
    }
}

}  // namespace hearth::quant
