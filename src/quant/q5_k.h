// Q5_K: super-blocks of 256 values in 8 sub-blocks of 32; 6-bit scales and mins packed in
// 12 bytes (see scale_min_k4.h); x = d*scale_j*q - dmin*min_j with 5-bit q: low 4 bits laid
// out as in Q4_K, 5th bits in a 32-byte mask. 5.5 bits per value.
#pragma once

#include <cstdint>

#include "quant/scale_min_k4.h"

namespace hearth::quant {

struct BlockQ5K {
    static constexpr int kElems = 256;
    ScaleMinHeader header;  // fp16 d and dmin, then the 12 bytes of packed scales and mins
    // 5th bits: value 64c + l (l < 32) is bit 2c of qh[l], value 64c + 32 + l is bit 2c + 1.
    uint8_t qh[32];
    // Low 4 bits: byte l of chunk c (32 bytes each) holds value 64c + l in the low nibble and
    // value 64c + 32 + l in the high nibble.
    uint8_t qs[128];
};
static_assert(sizeof(BlockQ5K) == 176, "Q5_K block: 2 fp16 + 12 bytes of scales + 32 + 128 bytes of quants");

void dequantize_row_q5_k(const BlockQ5K* blocks, float* out, int64_t n);
void quantize_row_q5_k(const float* in, BlockQ5K* blocks, int64_t n);

}  // namespace hearth::quant
