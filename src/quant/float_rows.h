// Rows of plain floats: F32, F16 (IEEE half) and BF16 (bfloat16), one element per "block".
#pragma once

#include <cstdint>

namespace hearth::quant {

void dequantize_row_f32(const float* in, float* out, int64_t n);
void quantize_row_f32(const float* in, float* out, int64_t n);

void dequantize_row_f16(const uint16_t* in, float* out, int64_t n);
void quantize_row_f16(const float* in, uint16_t* out, int64_t n);

void dequantize_row_bf16(const uint16_t* in, float* out, int64_t n);
void quantize_row_bf16(const float* in, uint16_t* out, int64_t n);

}  // namespace hearth::quant
