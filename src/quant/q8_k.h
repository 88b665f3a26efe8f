// Q8_K: super-blocks of 256 values, x = d * q with an f32 scale d and signed 8-bit q, plus the
// sum of each group of 16 quants. Used for activations in dot products with K-quant weights,
// never stored in model files.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ8K {
    static constexpr int kElems = 256;
    float d;            // f32 scale: -max/127, where max is the value of largest magnitude
    int8_t qs[256];     // quants, in element order
    int16_t bsums[16];  // bsums[g] = sum of qs[16g .. 16g + 15]
};
static_assert(sizeof(BlockQ8K) == 292, "Q8_K block: f32 scale + 256 quants + 16 int16 group sums");

void dequantize_row_q8_k(const BlockQ8K* blocks, float* out, int64_t n);
void quantize_row_q8_k(const float* in, BlockQ8K* blocks, int64_t n);

}  // namespace hearth::quant
