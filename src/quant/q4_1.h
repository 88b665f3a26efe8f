// Q4_1: blocks of 32 values, x = d * q + m with fp16 scale d, fp16 minimum m and 4-bit q.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ4_1 {
    static constexpr int kElems = 32;
    uint16_t d;      // fp16 scale
    uint16_t m;      // fp16 minimum (the block's smallest value)
    uint8_t qs[16];  // byte j: element j in the low nibble, element j + 16 in the high nibble
};
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block: fp16 scale and min + 16 bytes of nibbles");

void dequantize_row_q4_1(const BlockQ4_1* blocks, float* out, int64_t n);
void quantize_row_q4_1(const float* in, BlockQ4_1* blocks, int64_t n);

}  // namespace hearth::quant
