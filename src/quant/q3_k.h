// Q3_K: super-blocks of 256 values in 16 sub-blocks of 16; 6-bit signed scales packed in
// 12 bytes and one fp16 super-scale; x = d*scale_j*(q - 4) with 3-bit q: low 2 bits laid out
// as in Q2_K, 3rd bits in a 32-byte mask. 3.4375 bits per value.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ3K {
    static constexpr int kElems = 256;
    uint8_t hmask[32];  // 3rd bit of value e is bit e/32 of hmask[e % 32]
    uint8_t qs[64];     // low 2 bits, as BlockQ2K::qs
    // Scale j (6 bits, stored as scale + 32): low 4 bits in the low (j < 8) or high (j >= 8)
    // nibble of byte j % 8; high 2 bits at bit 2*(j/4) of byte 8 + j % 4.
    uint8_t scales[12];
    uint16_t d;  // fp16 super-block scale
};
static_assert(sizeof(BlockQ3K) == 110, "Q3_K block: 32 + 64 bytes of quants + 12 scale bytes + fp16");

void dequantize_row_q3_k(const BlockQ3K* blocks, float* out, int64_t n);
void quantize_row_q3_k(const float* in, BlockQ3K* blocks, int64_t n);

}  // namespace hearth::quant
