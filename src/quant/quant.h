// Scalar reference conversions between f32 rows and every tensor type hearth computes with.
// These are the documentation of each format and the yardstick of every fast kernel: they
// follow llama.cpp's reference arithmetic step for step, so that dequantize reproduces its
// floats bit for bit and quantize (without importance matrix) its bytes byte for byte.
#pragma once

#include <cstdint>

#include "quant/types.h"

namespace hearth::quant {

bool can_dequantize(Type type);
bool can_quantize(Type type);

// n must be a whole number of blocks of `type`; src holds row_bytes(type, n) bytes.
void dequantize_row(Type type, const void* src, float* dst, int64_t n);

// n must be a whole number of blocks of `type`; dst receives row_bytes(type, n) bytes.
// Throws hearth::Error for a type that cannot be quantized.
void quantize_row(Type type, const float* src, void* dst, int64_t n);

}  // namespace hearth::quant
