// Inside matmul: what the 32-value-block kernels (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4)
// of every ISA share. Each activation row is quantized once to blocks of 32 int8 values with an
// f32 scale, so that a weight block meets an activation block in one integer dot product:
//   dot(w, x) ~= sum over blocks of  dw * dx * sum_j(qw_j * qx_j)  [+ mw * dx * sum_j(qx_j)]
// where the bracketed term is the minimum of Q4_1/Q5_1 (x = d * q + m).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/matmul_kernels.h"
#include "quant/iq4_nl.h"
#include "quant/mxfp4.h"
#include "quant/q4_0.h"
#include "quant/q4_1.h"
#include "quant/q5_0.h"
#include "quant/q5_1.h"
#include "quant/q8_0.h"

namespace hearth::cpu::detail {

inline constexpr int kBlock32 = 32;

// One prepared block of 32 activations: x_j ~= d * qs[j], |qs[j]| <= 127 (never -128, so that
// the sign trick of the SIMD kernels, |w| * (x * sign w), cannot overflow).
struct Block32Activation {
    float d;        // largest magnitude / 127
    float sum;      // d * sum_j qs[j]: the block sum of x as the kernels see it (for the min term)
    int8_t qs[32];  // in element order
};
static_assert(sizeof(Block32Activation) == 40, "f32 scale + f32 sum + 32 signed bytes");

inline size_t block32_prepared_row_bytes(int64_t cols) {
    return static_cast<size_t>(cols / kBlock32) * sizeof(Block32Activation);
}

// The reference quantization of one activation row (cols a multiple of 32): q = x / d rounded
// to nearest, ties to even (the rounding of the SIMD conversion, so that every ISA prepares the
// same bytes).
void prepare_block32_row_scalar(const float* x, int64_t cols, uint8_t* out);
// The same bytes as the scalar reference, eight values at a time (AVX2).
void prepare_block32_row_avx2(const float* x, int64_t cols, uint8_t* out);

// The AVX-512 VNNI Q8_0 prompt kernel (matmul_block32_lanes.cpp): 16 weight rows in the lanes of
// a vector, for two tokens or more (MatmulKernel::rows without the one-token case). Its
// activation rows are the block32 ones followed by one int32 per block, -128 times the block's
// sum of quants.
size_t block32_with_sums_row_bytes(int64_t cols);
void prepare_block32_row_with_sums(const float* x, int64_t cols, uint8_t* out);
void q8_0_lane_rows(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                    int64_t row_begin, int64_t row_end, float* y, int64_t y_stride);

// MXFP4 facts the kernels need in integer form: the E2M1 values doubled (0, ±0.5 ... ±6 become
// 0, ±1 ... ±12), and the block scale halved to match, 2^(e - 128) (f32 subnormal for e < 2).
inline constexpr int8_t kMxfp4DoubledValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
float mxfp4_half_scale(uint8_t e);

// The kernel for `type` of a family written once over the block type:
// Family::kernel<Block> is a MatmulKernel. nullptr for a type that is not a 32-value block.
template <class Family>
const MatmulKernel* find_block32_kernel_of(quant::Type type) {
    switch (type) {
        case quant::Type::Q8_0: return &Family::template kernel<quant::BlockQ8_0>;
        case quant::Type::Q4_0: return &Family::template kernel<quant::BlockQ4_0>;
        case quant::Type::Q4_1: return &Family::template kernel<quant::BlockQ4_1>;
        case quant::Type::Q5_0: return &Family::template kernel<quant::BlockQ5_0>;
        case quant::Type::Q5_1: return &Family::template kernel<quant::BlockQ5_1>;
        case quant::Type::IQ4_NL: return &Family::template kernel<quant::BlockIQ4NL>;
        case quant::Type::MXFP4: return &Family::template kernel<quant::BlockMXFP4>;
        default: return nullptr;
    }
}

// Kernels written for exactly that ISA; nullptr for a type without one.
const MatmulKernel* find_block32_kernel_avx2(quant::Type type);
const MatmulKernel* find_block32_kernel_avx512(quant::Type type);

}  // namespace hearth::cpu::detail
