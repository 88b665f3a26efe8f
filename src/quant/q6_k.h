// Q6_K: super-blocks of 256 values in 16 sub-blocks of 16; signed 8-bit scales and one fp16
// super-scale; x = d*scale_j*(q - 32) with 6-bit q split into 4 low bits (ql) and 2 high bits
// (qh). 6.5625 bits per value.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ6K {
    static constexpr int kElems = 256;
    // Per half h of 128 values, value 128h + 32k + l (k = 0..3, l < 32):
    //   low 4 bits:  ql[64h + 32*(k % 2) + l], low nibble for k < 2, high nibble for k >= 2
    //   high 2 bits: bits 2k, 2k+1 of qh[32h + l]
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];  // scale of sub-block j (values 16j .. 16j + 15)
    uint16_t d;         // fp16 super-block scale
};
static_assert(sizeof(BlockQ6K) == 210, "Q6_K block: 128 + 64 bytes of quants + 16 scales + fp16");

void dequantize_row_q6_k(const BlockQ6K* blocks, float* out, int64_t n);
void quantize_row_q6_k(const float* in, BlockQ6K* blocks, int64_t n);

}  // namespace hearth::quant
