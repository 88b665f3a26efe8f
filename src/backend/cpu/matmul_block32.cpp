// The 32-value-block kernels in plain C++: the reference of the integer method every SIMD kernel
// (matmul_block32_avx2.cpp, matmul_block32_avx512.cpp) follows, and the kernel on CPUs without
// AVX2. Each weight block is decoded to 32 signed integer levels, a scale and a minimum, then
// dotted with the prepared activation block in int32.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/cpu/matmul_block32.h"
#include "quant/fp16.h"
#include "quant/iq4_grid.h"
#include "quant/iq4_nl.h"
#include "quant/mxfp4.h"
#include "quant/q4_0.h"
#include "quant/q4_1.h"
#include "quant/q5_0.h"
#include "quant/q5_1.h"
#include "quant/q8_0.h"

namespace hearth::cpu::detail {

float mxfp4_half_scale(uint8_t e) {
    const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
    return std::bit_cast<float>(bits);
}

void prepare_block32_row_scalar(const float* x, int64_t cols, uint8_t* out) {
    auto* blocks = reinterpret_cast<Block32Activation*>(out);
    for (int64_t b = 0; b < cols / kBlock32; ++b) {
        const float* values = x + b * kBlock32;
        float largest = 0.0f;
        for (int j = 0; j < kBlock32; ++j) largest = std::max(largest, std::fabs(values[j]));
        const float d = largest / 127;
        const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < kBlock32; ++j) {
            // nearbyint in the default rounding mode: ties to even, as vcvtps2dq.
            const int q = static_cast<int>(std::nearbyint(values[j] * inverse_d));
            blocks[b].qs[j] = static_cast<int8_t>(q);
            sum += q;
        }
        blocks[b].d = d;
        blocks[b].sum = d * static_cast<float>(sum);
    }
}

namespace {

using quant::BlockIQ4NL;
using quant::BlockMXFP4;
using quant::BlockQ4_0;
using quant::BlockQ4_1;
using quant::BlockQ5_0;
using quant::BlockQ5_1;
using quant::BlockQ8_0;

// A weight block as the integer method sees it: w_j = d * levels[j] + m.
struct DecodedBlock {
    float d = 0.0f;
    float m = 0.0f;
    int8_t levels[32] = {};
};

// Element j of a nibble-packed block: low nibble of byte j for j < 16, high nibble of byte j - 16.
int nibble(const uint8_t qs[16], int j) { return j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4; }

DecodedBlock decode(const BlockQ8_0& block) {
    DecodedBlock out{.d = quant::fp16_to_fp32(block.d)};
    std::memcpy(out.levels, block.qs, sizeof(out.levels));
    return out;
}

DecodedBlock decode(const BlockQ4_0& block) {
    DecodedBlock out{.d = quant::fp16_to_fp32(block.d)};
    for (int j = 0; j < kBlock32; ++j) out.levels[j] = static_cast<int8_t>(nibble(block.qs, j) - 8);
    return out;
}

DecodedBlock decode(const BlockQ4_1& block) {
    DecodedBlock out{.d = quant::fp16_to_fp32(block.d), .m = quant::fp16_to_fp32(block.m)};
    for (int j = 0; j < kBlock32; ++j) out.levels[j] = static_cast<int8_t>(nibble(block.qs, j));
    return out;
}

DecodedBlock decode(const BlockQ5_0& block) {
    DecodedBlock out{.d = quant::fp16_to_fp32(block.d)};
    const uint32_t high_bits = quant::load_high_bits(block.qh);
    for (int j = 0; j < kBlock32; ++j)
        out.levels[j] = static_cast<int8_t>(quant::q5_level(block.qs, high_bits, j % 16, j / 16) - 16);
    return out;
}

DecodedBlock decode(const BlockQ5_1& block) {
    DecodedBlock out{.d = quant::fp16_to_fp32(block.d), .m = quant::fp16_to_fp32(block.m)};
    const uint32_t high_bits = quant::load_high_bits(block.qh);
    for (int j = 0; j < kBlock32; ++j)
        out.levels[j] = static_cast<int8_t>(quant::q5_level(block.qs, high_bits, j % 16, j / 16));
    return out;
}

DecodedBlock decode(const BlockIQ4NL& block) {
    DecodedBlock out{.d = quant::fp16_to_fp32(block.d)};
    for (int j = 0; j < kBlock32; ++j) out.levels[j] = quant::kIq4Grid[nibble(block.qs, j)];
    return out;
}

DecodedBlock decode(const BlockMXFP4& block) {
    DecodedBlock out{.d = mxfp4_half_scale(block.e)};
    for (int j = 0; j < kBlock32; ++j) out.levels[j] = kMxfp4DoubledValues[nibble(block.qs, j)];
    return out;
}

// dot(weight row, activation row): the integer dot of each block pair scaled by dw * dx, plus
// the minimum term mw * (block sum of x) kept in its own sum, both summed over blocks in order.
template <class Block>
float dot_row(const Block* weights, const Block32Activation* activations, int64_t blocks) {
    float scaled_dots = 0.0f;
    float minimum_terms = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
        const DecodedBlock w = decode(weights[b]);
        const Block32Activation& x = activations[b];
        int32_t dot = 0;
        for (int j = 0; j < kBlock32; ++j) dot += int32_t{w.levels[j]} * x.qs[j];
        scaled_dots += (w.d * x.d) * static_cast<float>(dot);
        minimum_terms += w.m * x.sum;
    }
    return scaled_dots + minimum_terms;
}

template <class Block>
void rows_scalar(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                 int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    const int64_t blocks = w.cols / kBlock32;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const auto* weights = reinterpret_cast<const Block*>(w.data + r * w.row_bytes);
        for (int64_t t = 0; t < tokens; ++t) {
            const auto* x = reinterpret_cast<const Block32Activation*>(prepared + t * prepared_stride);
            y[t * y_stride + r] = dot_row(weights, x, blocks);
        }
    }
}

struct ScalarKernels {
    template <class Block>
    static constexpr MatmulKernel kernel{block32_prepared_row_bytes, prepare_block32_row_scalar, rows_scalar<Block>};
};

const MatmulKernel* find_block32_kernel_scalar(quant::Type type) { return find_block32_kernel_of<ScalarKernels>(type); }

}  // namespace

const MatmulKernel* find_block32_kernel(quant::Type type, Isa isa) {
    switch (isa) {
        case Isa::Scalar: return find_block32_kernel_scalar(type);
        case Isa::Avx2: return find_block32_kernel_avx2(type);
        case Isa::Avx512: return find_block32_kernel_avx512(type);
    }
    return nullptr;
}

}  // namespace hearth::cpu::detail
