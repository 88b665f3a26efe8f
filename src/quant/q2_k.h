// Q2_K: super-blocks of 256 values in 16 sub-blocks of 16; per sub-block a 4-bit scale and a
// 4-bit min, each relative to an fp16 super-scale; x = d*scale_j*q - dmin*min_j with 2-bit q.
// 2.625 bits per value.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ2K {
    static constexpr int kElems = 256;
    uint8_t scales[16];  // sub-block j: scale in the low nibble, min in the high nibble
    // 2-bit quants: value 128h + 32k + l (k = 0..3, l < 32) is bits 2k, 2k+1 of qs[32h + l].
    uint8_t qs[64];
    uint16_t d;     // fp16 scale of the 4-bit scales
    uint16_t dmin;  // fp16 scale of the 4-bit mins
};
static_assert(sizeof(BlockQ2K) == 84, "Q2_K block: 16 scale bytes + 64 bytes of quants + 2 fp16");

void dequantize_row_q2_k(const BlockQ2K* blocks, float* out, int64_t n);
void quantize_row_q2_k(const float* in, BlockQ2K* blocks, int64_t n);

// The 2-bit layout shared by Q2_K and Q3_K (their low 2 bits): levels 0..3 of 256 values into
// 64 bytes as described for BlockQ2K::qs.
void pack_2bit_levels(const uint8_t levels[256], uint8_t qs[64]);

}  // namespace hearth::quant
