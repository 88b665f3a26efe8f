// Q4_K: super-blocks of 256 values in 8 sub-blocks of 32; 6-bit scales and mins packed in
// 12 bytes (see scale_min_k4.h); x = d*scale_j*q - dmin*min_j with 4-bit q. 4.5 bits per value.
#pragma once

#include <cstdint>

#include "quant/scale_min_k4.h"

namespace hearth::quant {

struct BlockQ4K {
    static constexpr int kElems = 256;
    ScaleMinHeader header;  // fp16 d and dmin, then the 12 bytes of packed scales and mins
    // Four chunks of 32 bytes, one per 64 values: byte l of chunk c holds value 64c + l in the
    // low nibble and value 64c + 32 + l in the high nibble.
    uint8_t qs[128];
};
static_assert(sizeof(BlockQ4K) == 144, "Q4_K block: 2 fp16 + 12 bytes of scales + 128 bytes of nibbles");

void dequantize_row_q4_k(const BlockQ4K* blocks, float* out, int64_t n);
void quantize_row_q4_k(const float* in, BlockQ4K* blocks, int64_t n);

}  // namespace hearth::quant
