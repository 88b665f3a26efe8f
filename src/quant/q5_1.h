// Q5_1: blocks of 32 values, x = d * q + m with fp16 scale d, fp16 minimum m and 5-bit q laid
// out as in Q5_0.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ5_1 {
    static constexpr int kElems = 32;
    uint16_t d;      // fp16 scale
    uint16_t m;      // fp16 minimum
    uint8_t qh[4];   // little-endian 32-bit mask: bit i is the 5th bit of element i
    uint8_t qs[16];  // byte j: low 4 bits of element j (low nibble) and j + 16 (high nibble)
};
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block: fp16 scale and min + 4-byte mask + 16 bytes");

void dequantize_row_q5_1(const BlockQ5_1* blocks, float* out, int64_t n);
void quantize_row_q5_1(const float* in, BlockQ5_1* blocks, int64_t n);

}  // namespace hearth::quant
