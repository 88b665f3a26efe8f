// Q4_0: blocks of 32 values, x = d * (q - 8) with one fp16 scale d and 4-bit q.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ4_0 {
    static constexpr int kElems = 32;
    uint16_t d;      // fp16 scale
    uint8_t qs[16];  // byte j: element j in the low nibble, element j + 16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block: fp16 scale + 16 bytes of nibbles");

void dequantize_row_q4_0(const BlockQ4_0* blocks, float* out, int64_t n);
void quantize_row_q4_0(const float* in, BlockQ4_0* blocks, int64_t n);

}  // namespace hearth::quant
