// The float-weight kernels on f32 vectors, written once for the AVX2 and the AVX-512 file. The
// including file defines HEARTH_FLOAT_TARGET (the target attribute string of every function
// here) and, before the include, a struct SimdFloat with
//   Vec, kLanes              the f32 vector and its width
//   kTileRows, kTileTokens   the prompt tile: weight rows x tokens sharing each loaded vector
//   load(F32Weights / F16Weights / BF16Weights, pointer)  kLanes weights widened to f32
//   load_activations(pointer), zero(), add(a, b), fmadd(a, b, c) = a * b + c, horizontal_sum(v)
//   round_to_f16(v, uint16_t* out)  stores v rounded to f16 (to nearest even), returns it widened
//   store_widened(float* out, v)
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

// What a tile or row of one token reads for its activations: F16's f16 copy (see
// matmul_float.h), half the bytes of the f32 row and the same values, so the same bits; the f32
// row for the other types.
template <class Weights>
struct OneTokenActivations {
    const float* x;
    OneTokenActivations(const float* row, int64_t) : x(row) {}
    HEARTH_FLT typename SimdFloat::Vec load(int64_t at) const { return SimdFloat::load_activations(x + at); }
};
template <>
struct OneTokenActivations<F16Weights> {
    const uint16_t* x;
    OneTokenActivations(const float* widened, int64_t cols)
        : x(f16_activations(reinterpret_cast<const uint8_t*>(widened), cols)) {}
    HEARTH_FLT typename SimdFloat::Vec load(int64_t at) const { return SimdFloat::load(F16Weights{}, x + at); }
};

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
    const OneTokenActivations<Weights> one_token{x[0], cols};
    Vec sums[kRows][kTokens];
    for (int r = 0; r < kRows; ++r)
        for (int t = 0; t < kTokens; ++t) sums[r][t] = SimdFloat::zero();
    const int64_t vector_cols = cols / kLanes * kLanes;
    for (int64_t i = 0; i < vector_cols; i += kLanes) {
        Vec weights[kRows];
        for (int r = 0; r < kRows; ++r) weights[r] = SimdFloat::load(Weights{}, w[r] + i);
        for (int t = 0; t < kTokens; ++t) {
            const Vec activations =
                kTokens == 1 ? one_token.load(i) : SimdFloat::load_activations(x[t] + i);
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

// One token against one row (see for_each_tile): four accumulators of kLanes columns each, so
// four independent FMAs and their loads are in flight; then the leftover vectors into the
// first, the fixed pairwise sum of the four, and the scalar leftover columns.
template <class Weights>
HEARTH_FLT void float_decode_row(const uint8_t* weight_row, size_t, int64_t cols, const uint8_t* prepared, size_t,
                                 float* y, int64_t) {
    using Element = typename Weights::Element;
    using Vec = typename SimdFloat::Vec;
    constexpr int kAccumulators = 4;
    constexpr int64_t kLanes = SimdFloat::kLanes;
    constexpr int64_t kStep = kAccumulators * kLanes;
    const Element* w = reinterpret_cast<const Element*>(weight_row);
    const float* x = reinterpret_cast<const float*>(prepared);
    const OneTokenActivations<Weights> activations{x, cols};
    Vec sums[kAccumulators];
    for (Vec& sum : sums) sum = SimdFloat::zero();
    int64_t i = 0;
    for (; i + kStep <= cols; i += kStep) {
        for (int a = 0; a < kAccumulators; ++a) {
            const int64_t at = i + a * kLanes;
            sums[a] = SimdFloat::fmadd(SimdFloat::load(Weights{}, w + at), activations.load(at), sums[a]);
        }
    }
    for (; i + kLanes <= cols; i += kLanes)
        sums[0] = SimdFloat::fmadd(SimdFloat::load(Weights{}, w + i), activations.load(i), sums[0]);
    const Vec total = SimdFloat::add(SimdFloat::add(sums[0], sums[1]), SimdFloat::add(sums[2], sums[3]));
    float sum = SimdFloat::horizontal_sum(total);
    for (; i < cols; ++i) sum += widen_one<Weights>(w[i]) * x[i];
    *y = sum;
}

// Weight rows in slabs that stay in L2 while every token passes over them (see the block32
// kernels).
constexpr size_t kFloatSlabBytes = size_t{256} << 10;

template <class Weights>
struct FloatTiles {
    static constexpr int kRows = SimdFloat::kTileRows;
    static constexpr int kTokens = SimdFloat::kTileTokens;
    template <int kTileRows, int kTileTokens>
    static constexpr TileDotFn dot = float_dot_tile<Weights, kTileRows, kTileTokens>;
    static constexpr TileDotFn decode_row = float_decode_row<Weights>;
    // Measured, 2 threads, F16 rows in memory: one row at a time is faster than the kTileRows x 1
    // tile for 2048 columns (1.5x with f32 activations, 1.25x with f16 ones) and 4096 (1.2x,
    // f32), and slower for 8192 and 14336 (1.4-1.5x with f32 activations, 1.25x with f16 ones).
    // The tile reads the activations once per kTileRows rows (docs/performance.md).
    static constexpr bool decodes_by_row(int64_t cols) { return cols <= 4096; }
};

template <class Weights>
HEARTH_FLT void float_rows_simd(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride,
                                int64_t tokens, int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    for_each_tile<FloatTiles<Weights>>(w, prepared, prepared_stride, tokens, row_begin, row_end, y, y_stride,
                                       kFloatSlabBytes);
}

HEARTH_FLT void prepare_f16_row_simd(const float* x, int64_t cols, uint8_t* out) {
    constexpr int64_t kLanes = SimdFloat::kLanes;
    auto* widened = reinterpret_cast<float*>(out);
    auto* halves = reinterpret_cast<uint16_t*>(out + static_cast<size_t>(cols) * sizeof(float));
    int64_t i = 0;
    for (; i + kLanes <= cols; i += kLanes)
        SimdFloat::store_widened(widened + i, SimdFloat::round_to_f16(SimdFloat::load_activations(x + i), halves + i));
    prepare_f16_values(x, i, cols, out);
}

template <class Weights>
constexpr MatmulKernel kFloatSimdKernel{float_prepared_row_bytes, prepare_float_row, float_rows_simd<Weights>};
template <>
constexpr MatmulKernel kFloatSimdKernel<F16Weights>{f16_prepared_row_bytes, prepare_f16_row_simd,
                                                    float_rows_simd<F16Weights>};

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
