// Q8_0: blocks of 32 values, x = d * q with one fp16 scale d and signed 8-bit q.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ8_0 {
    static constexpr int kElems = 32;
    uint16_t d;     // fp16 scale: the block's largest magnitude / 127
    int8_t qs[32];  // quants, in element order
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block: fp16 scale + 32 signed bytes");

void dequantize_row_q8_0(const BlockQ8_0* blocks, float* out, int64_t n);
void quantize_row_q8_0(const float* in, BlockQ8_0* blocks, int64_t n);

}  // namespace hearth::quant
