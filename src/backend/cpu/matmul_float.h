// Inside matmul: what the float-weight kernels (F32, F16, BF16) of every ISA share. Weights widen
// to f32 in registers; activations are prepared per weight type:
//  - F32 and BF16: an f32 copy of the row.
//  - F16: rounded to f16, as llama.cpp rounds them for its F16 dot product, and kept twice: widened
//    back to f32 (what the prompt tiles read, one load a vector) and as f16 (what the decode kernel
//    reads). Half the bytes let the activation row stay in L1 beside the weight stream: with f32
//    activations, decoding read 0.87 (2048 columns) and 0.54 (8192) of the bandwidth a plain read
//    reached, with f16 ones 1.03 and 0.82 (docs/performance.md). The rounding is 2^-11 of each
//    value; the tiny model's logits stay within 5.9e-4 of the float64 reference (2.8e-4 before).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_kernels.h"
#include "quant/fp16.h"

namespace hearth::cpu::detail {

inline size_t float_prepared_row_bytes(int64_t cols) { return static_cast<size_t>(cols) * sizeof(float); }

inline void prepare_float_row(const float* x, int64_t cols, uint8_t* out) {
    std::memcpy(out, x, float_prepared_row_bytes(cols));
}

// Rounded up to 64 bytes, so the f32 copy of every row in a batch stays aligned; the padding is
// zeroed, so the prepared bytes of every ISA compare equal.
inline size_t f16_prepared_row_bytes(int64_t cols) {
    const size_t bytes = static_cast<size_t>(cols) * (sizeof(float) + sizeof(uint16_t));
    return (bytes + 63) / 64 * 64;
}

// The f16 copy of an F16 kernel's prepared row, after its f32 one.
inline const uint16_t* f16_activations(const uint8_t* prepared, int64_t cols) {
    return reinterpret_cast<const uint16_t*>(prepared + static_cast<size_t>(cols) * sizeof(float));
}

// Values [begin, cols) of an F16 kernel's prepared row through the scalar f16 rounding of
// quant/fp16.h, then the padding zeroed: the reference for the whole row, and the SIMD
// preparations' leftover columns.
inline void prepare_f16_values(const float* x, int64_t begin, int64_t cols, uint8_t* out) {
    auto* widened = reinterpret_cast<float*>(out);
    auto* halves = reinterpret_cast<uint16_t*>(out + static_cast<size_t>(cols) * sizeof(float));
    for (int64_t i = begin; i < cols; ++i) {
        halves[i] = quant::fp32_to_fp16(x[i]);
        widened[i] = quant::fp16_to_fp32(halves[i]);
    }
    std::fill(reinterpret_cast<uint8_t*>(halves + cols), out + f16_prepared_row_bytes(cols), uint8_t{0});
}

inline void prepare_f16_row_scalar(const float* x, int64_t cols, uint8_t* out) { prepare_f16_values(x, 0, cols, out); }

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
