// Inside matmul: what the float-weight kernels (F32, F16, BF16) of every ISA share. Activations
// stay f32 (the prepared row is a copy): rounding them to 16 bits would cost the 1e-3 agreement
// with a float64 reference that F16 models must keep. Weights widen to f32 in registers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_kernels.h"

namespace hearth::cpu::detail {

inline size_t float_prepared_row_bytes(int64_t cols) { return static_cast<size_t>(cols) * sizeof(float); }

inline void prepare_float_row(const float* x, int64_t cols, uint8_t* out) {
    std::memcpy(out, x, float_prepared_row_bytes(cols));
}

// The weight element of each float type, as the kernels load it.
struct F32Weights {
    using Element = float;
};
struct F16Weights {
    using Element = uint16_t;
};
struct BF16Weights {
    using Element = uint16_t;
};

// Kernels written for exactly that ISA; nullptr for a type without one.
const MatmulKernel* find_float_kernel_avx2(quant::Type type);
const MatmulKernel* find_float_kernel_avx512(quant::Type type);

}  // namespace hearth::cpu::detail
