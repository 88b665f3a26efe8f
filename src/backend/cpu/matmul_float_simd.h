// The float-weight kernels on f32 vectors, written once for the AVX2 and the AVX-512 file. The
// including file defines HEARTH_FLOAT_TARGET (the target attribute string of every function
// here) and, before the include, a struct SimdFloat with
//   Vec, kLanes              the f32 vector and its width
//   kTileRows, kTileTokens   the prompt tile: weight rows x tokens sharing each loaded vector
//   load(F32Weights / F16Weights / BF16Weights, pointer)  kLanes weights widened to f32
//   load_activations(pointer), zero(), fmadd(a, b, c) = a * b + c, horizontal_sum(v)
// Everything lives in an unnamed namespace: each including file compiles its own copy.
//
// One output element is always computed the same way, whatever tile it falls in: one FMA per
// kLanes columns into its own vector, a fixed horizontal sum, then the leftover columns
// (cols % kLanes) in scalar order. Tile and tail therefore give identical bits.
#include <type_traits>

#include "backend/cpu/matmul_float.h"
#include "backend/cpu/matmul_tiles.h"
#include "quant/fp16.h"

#ifndef HEARTH_FLOAT_TARGET
#error "define HEARTH_FLOAT_TARGET before including matmul_float_simd.h"
#endif

namespace hearth::cpu::detail {
namespace {

#define HEARTH_FLT __attribute__((target(HEARTH_FLOAT_TARGET)))

template <class Weights>
HEARTH_FLT inline float widen_one(typename Weights::Element value) {
    if constexpr (std::is_same_v<Weights, F16Weights>) return quant::fp16_to_fp32(value);
    else if constexpr (std::is_same_v<Weights, BF16Weights>) return quant::bf16_to_fp32(value);
    else return value;
}

template <class Weights, int kRows, int kTokens>
HEARTH_FLT void float_dot_tile(const uint8_t* weight_rows, size_t row_bytes, int64_t cols, const uint8_t* prepared,
                               size_t prepared_stride, float* y, int64_t y_stride) {
    using Element = typename Weights::Element;
    using Vec = typename SimdFloat::Vec;
    constexpr int64_t kLanes = SimdFloat::kLanes;
    const Element* w[kRows];
    const float* x[kTokens];
    for (int r = 0; r < kRows; ++r) w[r] = reinterpret_cast<const Element*>(weight_rows + r * row_bytes);
    for (int t = 0; t < kTokens; ++t) x[t] = reinterpret_cast<const float*>(prepared + t * prepared_stride);
    Vec sums[kRows][kTokens];
    for (int r = 0; r < kRows; ++r)
        for (int t = 0; t < kTokens; ++t) sums[r][t] = SimdFloat::zero();
    const int64_t vector_cols = cols / kLanes * kLanes;
    // The rows after this tile come next; reading them ahead, at the pace this tile is read,
    // keeps memory busy across the page boundaries where the hardware prefetcher stops (a row
    // is often exactly one 4 KiB page).
    const char* next_tile = reinterpret_cast<const char*>(weight_rows + kRows * row_bytes);
    const size_t prefetch_step = kRows * kLanes * sizeof(Element);
    for (int64_t i = 0; i < vector_cols; i += kLanes) {
        if constexpr (kTokens == 1) {
            const char* ahead = next_tile + i / kLanes * prefetch_step;
            for (size_t line = 0; line < prefetch_step; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
        }
        Vec weights[kRows];
        for (int r = 0; r < kRows; ++r) weights[r] = SimdFloat::load(Weights{}, w[r] + i);
        for (int t = 0; t < kTokens; ++t) {
            const Vec activations = SimdFloat::load_activations(x[t] + i);
            for (int r = 0; r < kRows; ++r) sums[r][t] = SimdFloat::fmadd(weights[r], activations, sums[r][t]);
        }
    }
    for (int r = 0; r < kRows; ++r) {
        for (int t = 0; t < kTokens; ++t) {
            float sum = SimdFloat::horizontal_sum(sums[r][t]);
            for (int64_t i = vector_cols; i < cols; ++i) sum += widen_one<Weights>(w[r][i]) * x[t][i];
            y[t * y_stride + r] = sum;
        }
    }
}

// Weight rows in slabs that stay in L2 while every token passes over them (see the block32
// kernels); decoding streams kTileRows rows at a time.
constexpr size_t kFloatSlabBytes = size_t{256} << 10;

template <class Weights>
struct FloatTiles {
    static constexpr int kRows = SimdFloat::kTileRows;
    static constexpr int kTokens = SimdFloat::kTileTokens;
    template <int kTileRows, int kTileTokens>
    static constexpr TileDotFn dot = float_dot_tile<Weights, kTileRows, kTileTokens>;
};

template <class Weights>
HEARTH_FLT void float_rows_simd(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride,
                                int64_t tokens, int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    for_each_tile<FloatTiles<Weights>>(w, prepared, prepared_stride, tokens, row_begin, row_end, y, y_stride,
                                       kFloatSlabBytes);
}

template <class Weights>
constexpr MatmulKernel kFloatSimdKernel{float_prepared_row_bytes, prepare_float_row, float_rows_simd<Weights>};

const MatmulKernel* find_float_simd_kernel(quant::Type type) {
    switch (type) {
        case quant::Type::F32: return &kFloatSimdKernel<F32Weights>;
        case quant::Type::F16: return &kFloatSimdKernel<F16Weights>;
        case quant::Type::BF16: return &kFloatSimdKernel<BF16Weights>;
        default: return nullptr;
    }
}

#undef HEARTH_FLT

}  // namespace
}  // namespace hearth::cpu::detail
