// Whole rows of f32 <-> f16 at hardware speed: F16C instructions where the CPU has them, the
// scalar reference (fp16.h) otherwise and for NaN inputs. Bit-identical to the reference for
// every input (tests/quant/fp16_rows_test.cpp), so files written either way are the same.
#pragma once

#include <cstdint>

namespace hearth::quant {

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n);
void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n);

}  // namespace hearth::quant
