// Inside matmul: the kernel table. A family of weight types (K-quants, 32-value blocks, floats)
// provides one MatmulKernel per (type, ISA) it has written; matmul.cpp picks the one for the
// requested ISA, or falls back to a narrower ISA, or to the generic kernel (dequantize one row
// into L1, then f32 dot products).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/matmul.h"

namespace hearth::cpu::detail {

struct MatmulKernel {
    // Bytes of one prepared activation row of `cols` values.
    size_t (*prepared_row_bytes)(int64_t cols) = nullptr;
    // Prepares one activation row (cols values) into `out` (prepared_row_bytes(cols) bytes).
    void (*prepare_row)(const float* x, int64_t cols, uint8_t* out) = nullptr;
    // y[t * y_stride + r] for r in [row_begin, row_end), t in [0, tokens); `prepared` holds
    // `tokens` rows of `prepared_stride` bytes. Every element must come out bit-identical
    // whatever the row range and, for two tokens or more, whatever the token count (no
    // summation order that depends on the tile an element falls in). A one-token call may use
    // a decode kernel of its own order (see for_each_tile).
    void (*rows)(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                 int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) = nullptr;
};

// nullptr when the family has no kernel for this type written for exactly this ISA.
const MatmulKernel* find_k_quant_kernel(quant::Type type, Isa isa);   // matmul_k_quants*.cpp
const MatmulKernel* find_block32_kernel(quant::Type type, Isa isa);   // matmul_block32*.cpp
const MatmulKernel* find_float_kernel(quant::Type type, Isa isa);     // matmul_float*.cpp

// The generic kernel: works for every type quant::can_dequantize supports.
const MatmulKernel& generic_kernel(quant::Type type);

}  // namespace hearth::cpu::detail
