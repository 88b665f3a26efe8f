#include "quant/q5_k.h"

#include "quant/fp16.h"

namespace hearth::quant {

void dequantize_row_q5_k(const BlockQ5K* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ5K::kElems; ++b) {
        const BlockQ5K& block = blocks[b];
        const float d = fp16_to_fp32(block.header.d);
        const float dmin = fp16_to_fp32(block.header.dmin);
        float* y = out + b * BlockQ5K::kElems;
        for (int chunk = 0; chunk < 4; ++chunk) {
            const uint8_t* q = block.qs + 32 * chunk;
            const uint8_t low_bit = static_cast<uint8_t>(1u << (2 * chunk));
            const uint8_t high_bit = static_cast<uint8_t>(2u << (2 * chunk));
            const ScaleMin low = unpack_scale_min_k4(block.header.scales, 2 * chunk);
            const ScaleMin high = unpack_scale_min_k4(block.header.scales, 2 * chunk + 1);
            const float d_low = d * low.scale;
            const float min_low = dmin * low.min;
            const float d_high = d * high.scale;
            const float min_high = dmin * high.min;
            for (int l = 0; l < 32; ++l) {
                y[l] = d_low * ((q[l] & 0x0f) + ((block.qh[l] & low_bit) != 0 ? 16 : 0)) - min_low;
            }
            for (int l = 0; l < 32; ++l) {
                y[32 + l] = d_high * ((q[l] >> 4) + ((block.qh[l] & high_bit) != 0 ? 16 : 0)) - min_high;
            }
            y += 64;
        }
    }
}

void quantize_row_q5_k(const float* in, BlockQ5K* blocks, int64_t n) {
    // llama.cpp's reference search for 5 bits: trial inverse scales (31 - 0.5 + 0.1k)/range.
    constexpr AffineSearch kSearch{.nmax = 31, .rmin = -0.5f, .rdelta = 0.1f, .nstep = 15, .use_mad = false};
    for (int64_t b = 0; b < n / BlockQ5K::kElems; ++b) {
        BlockQ5K& block = blocks[b];
        uint8_t levels[BlockQ5K::kElems];
        quantize_scale_min_super_block(in + b * BlockQ5K::kElems, kSearch, &block.header, levels);
        for (int l = 0; l < 32; ++l) block.qh[l] = 0;
        for (int chunk = 0; chunk < 4; ++chunk) {
            const uint8_t* chunk_levels = levels + 64 * chunk;
            for (int l = 0; l < 32; ++l) {
                const uint8_t low = chunk_levels[l];
                const uint8_t high = chunk_levels[l + 32];
                block.qs[32 * chunk + l] = static_cast<uint8_t>((low & 0x0f) | ((high & 0x0f) << 4));
                block.qh[l] |=
                    static_cast<uint8_t>(((low >> 4) << (2 * chunk)) | ((high >> 4) << (2 * chunk + 1)));
            }
        }
    }
}

}  // namespace hearth::quant
