// IQ4_XS: super-blocks of 256 values in 8 sub-blocks of 32; 6-bit signed sub-block scales and
// one fp16 super-scale; x = d*(scale_j - 32)*kIq4Grid[q] with q a 4-bit index into the grid of
// iq4_grid.h. 4.25 bits per value.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockIQ4XS {
    static constexpr int kElems = 256;
    uint16_t d;           // fp16 super-block scale
    uint16_t scales_h;    // high 2 bits of scale j at bits 2j, 2j+1
    uint8_t scales_l[4];  // low 4 bits of scale j in the low (even j) or high (odd j) nibble of byte j/2
    uint8_t qs[128];      // sub-block j: 16 bytes laid out as an IQ4_NL block's
};
static_assert(sizeof(BlockIQ4XS) == 136, "IQ4_XS block: fp16 + 2 + 4 scale bytes + 128 bytes of indices");

void dequantize_row_iq4_xs(const BlockIQ4XS* blocks, float* out, int64_t n);
void quantize_row_iq4_xs(const float* in, BlockIQ4XS* blocks, int64_t n);

}  // namespace hearth::quant
