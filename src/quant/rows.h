// Whole-tensor conversions, split over threads by rows. Each row is converted by the scalar
// reference (quant.h), so the result does not depend on the thread count.
#pragma once

#include <cstdint>
#include <span>

#include "quant/types.h"

namespace hearth::quant {

// src: rows × row_length floats; dst: rows × row_bytes(type, row_length) bytes.
void quantize_rows(Type type, const float* src, uint8_t* dst, int64_t rows, int64_t row_length, int threads);
// src: rows × row_bytes(type, row_length) bytes; dst: rows × row_length floats.
void dequantize_rows(Type type, const uint8_t* src, float* dst, int64_t rows, int64_t row_length, int threads);

}  // namespace hearth::quant
