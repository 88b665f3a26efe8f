// IQ4_NL: blocks of 32 values, x = d * kIq4Grid[q] with one fp16 scale d and a 4-bit index q
// into the non-linear grid of iq4_grid.h.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockIQ4NL {
    static constexpr int kElems = 32;
    uint16_t d;      // fp16 scale
    uint8_t qs[16];  // byte j: index of value j (low nibble) and of value j + 16 (high nibble)
};
static_assert(sizeof(BlockIQ4NL) == 18, "IQ4_NL block: fp16 scale + 16 bytes of grid indices");

void dequantize_row_iq4_nl(const BlockIQ4NL* blocks, float* out, int64_t n);
void quantize_row_iq4_nl(const float* in, BlockIQ4NL* blocks, int64_t n);

}  // namespace hearth::quant
