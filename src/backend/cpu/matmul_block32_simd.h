// The 32-value-block kernels on 256-bit vectors, written once for the AVX2 and the AVX-512 file.
// The including file defines HEARTH_BLOCK32_TARGET (the target attribute string of every
// function here) and, before the include, a struct SimdCore with
//   kTileRows, kTileTokens   the prompt tile: weight rows x tokens sharing each loaded block
//   weight_operand(levels)   what the ISA's dot needs from a weight block besides its levels,
//                            computed once per block and shared by every token
//   activation_operand(x)    the same for an activation block, shared by every weight row
//   dot_lanes(levels, weight_operand, activation_operand)
//                            eight int32 lanes, lane k = exact sum of 4 products w * x
//   q5_high_bits(mask)       32 bytes, 0x10 where bit j of the mask is set
// Everything lives in an unnamed namespace: each including file gets its own copy, compiled for
// its own ISA.
//
// The arithmetic of one output element y[t][r] is the same in every tile shape: per block, one
// FMA of (dw * dx) times the int32 lanes into that element's own f32 lanes, then one fixed
// horizontal sum, then the minimum terms. Tile and tail therefore give identical bits.
#include <immintrin.h>

#include <type_traits>

#include "backend/cpu/matmul_block32.h"
#include "backend/cpu/matmul_tiles.h"
#include "backend/cpu/simd_common.h"
#include "quant/iq4_grid.h"
#include "quant/iq4_nl.h"
#include "quant/mxfp4.h"
#include "quant/q4_0.h"
#include "quant/q4_1.h"
#include "quant/q5_0.h"
#include "quant/q5_1.h"
#include "quant/q8_0.h"

#ifndef HEARTH_BLOCK32_TARGET
#error "define HEARTH_BLOCK32_TARGET before including matmul_block32_simd.h"
#endif

namespace hearth::cpu::detail {
namespace {

#define HEARTH_B32 __attribute__((target(HEARTH_BLOCK32_TARGET)))

using quant::BlockIQ4NL;
using quant::BlockMXFP4;
using quant::BlockQ4_0;
using quant::BlockQ4_1;
using quant::BlockQ5_0;
using quant::BlockQ5_1;
using quant::BlockQ8_0;

// A decoded weight block: signed levels, the ISA's operand for them, scale, minimum.
struct WeightBlock {
    __m256i levels;
    __m256i operand;
    float d;
    float m;
};

HEARTH_B32 inline WeightBlock make_block(__m256i levels, float d, float m = 0.0f) {
    return {levels, SimdCore::weight_operand(levels), d, m};
}

HEARTH_B32 inline float half_to_float(uint16_t half) { return _cvtsh_ss(half); }

// Nibble-packed bytes (byte j: element j low, element j + 16 high) to 32 bytes 0..15 in order.
HEARTH_B32 inline __m256i unpack_nibbles(const uint8_t qs[16]) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

HEARTH_B32 inline __m256i q5_levels(const uint8_t qs[16], const uint8_t qh[4]) {
    return _mm256_or_si256(unpack_nibbles(qs), SimdCore::q5_high_bits(quant::load_high_bits(qh)));
}

// 32 table entries picked by the nibbles: IQ4_NL's grid or MXFP4's doubled values.
HEARTH_B32 inline __m256i lookup_nibbles(const uint8_t qs[16], const int8_t table[16]) {
    const __m256i lookup = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table)));
    return _mm256_shuffle_epi8(lookup, unpack_nibbles(qs));
}

HEARTH_B32 inline WeightBlock decode(const BlockQ8_0& block) {
    return make_block(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs)), half_to_float(block.d));
}

HEARTH_B32 inline WeightBlock decode(const BlockQ4_0& block) {
    return make_block(_mm256_sub_epi8(unpack_nibbles(block.qs), _mm256_set1_epi8(8)), half_to_float(block.d));
}

HEARTH_B32 inline WeightBlock decode(const BlockQ4_1& block) {
    return make_block(unpack_nibbles(block.qs), half_to_float(block.d), half_to_float(block.m));
}

HEARTH_B32 inline WeightBlock decode(const BlockQ5_0& block) {
    return make_block(_mm256_sub_epi8(q5_levels(block.qs, block.qh), _mm256_set1_epi8(16)), half_to_float(block.d));
}

HEARTH_B32 inline WeightBlock decode(const BlockQ5_1& block) {
    return make_block(q5_levels(block.qs, block.qh), half_to_float(block.d), half_to_float(block.m));
}

HEARTH_B32 inline WeightBlock decode(const BlockIQ4NL& block) {
    return make_block(lookup_nibbles(block.qs, quant::kIq4Grid), half_to_float(block.d));
}

HEARTH_B32 inline WeightBlock decode(const BlockMXFP4& block) {
    return make_block(lookup_nibbles(block.qs, kMxfp4DoubledValues), mxfp4_half_scale(block.e));
}

template <class Block>
constexpr bool kHasMinimum = std::is_same_v<Block, BlockQ4_1> || std::is_same_v<Block, BlockQ5_1>;

// y[t][r] for kRows weight rows x kTokens tokens over every block of the row.
template <class Block, int kRows, int kTokens>
HEARTH_B32 void dot_tile(const uint8_t* weight_rows, size_t row_bytes, int64_t cols, const uint8_t* prepared,
                         size_t prepared_stride, float* y, int64_t y_stride) {
    const int64_t blocks = cols / kBlock32;
    __m256 scaled_dots[kRows][kTokens];
    float minimum_terms[kRows][kTokens];
    for (int r = 0; r < kRows; ++r) {
        for (int t = 0; t < kTokens; ++t) {
            scaled_dots[r][t] = _mm256_setzero_ps();
            minimum_terms[r][t] = 0.0f;
        }
    }
    for (int64_t b = 0; b < blocks; ++b) {
        WeightBlock w[kRows];
        for (int r = 0; r < kRows; ++r)
            w[r] = decode(reinterpret_cast<const Block*>(weight_rows + r * row_bytes)[b]);
        __m256 weight_scales[kRows];
        for (int r = 0; r < kRows; ++r) weight_scales[r] = _mm256_set1_ps(w[r].d);
        for (int t = 0; t < kTokens; ++t) {
            const auto& x = reinterpret_cast<const Block32Activation*>(prepared + t * prepared_stride)[b];
            const __m256i x_operand =
                SimdCore::activation_operand(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs)));
            const __m256 token_scale = _mm256_set1_ps(x.d);
            for (int r = 0; r < kRows; ++r) {
                const __m256i lanes = SimdCore::dot_lanes(w[r].levels, w[r].operand, x_operand);
                // dw * dx rounded once, as the scalar product would be: the same bits either way.
                const __m256 scale = _mm256_mul_ps(weight_scales[r], token_scale);
                scaled_dots[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), scale, scaled_dots[r][t]);
                if constexpr (kHasMinimum<Block>) minimum_terms[r][t] += w[r].m * x.sum;
            }
        }
    }
    for (int r = 0; r < kRows; ++r)
        for (int t = 0; t < kTokens; ++t) y[t * y_stride + r] = horizontal_sum_8(scaled_dots[r][t]) + minimum_terms[r][t];
}

// The scaled dot of one weight block with one activation block, added to `sum`.
template <class Block>
HEARTH_B32 inline __m256 add_scaled_dot(const Block& block, const Block32Activation& x, __m256 sum,
                                        float& minimum_terms) {
    const WeightBlock w = decode(block);
    const __m256i x_operand = SimdCore::activation_operand(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs)));
    const __m256i lanes = SimdCore::dot_lanes(w.levels, w.operand, x_operand);
    if constexpr (kHasMinimum<Block>) minimum_terms += w.m * x.sum;
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(w.d * x.d), sum);
}

// One token against one row (see for_each_tile): even and odd blocks go to two accumulators,
// so two blocks are in flight at once, then the two are added and summed across lanes.
template <class Block>
HEARTH_B32 void decode_row_dot(const uint8_t* weight_row, size_t, int64_t cols, const uint8_t* prepared, size_t,
                               float* y, int64_t) {
    const int64_t blocks = cols / kBlock32;
    const auto* w = reinterpret_cast<const Block*>(weight_row);
    const auto* x = reinterpret_cast<const Block32Activation*>(prepared);
    __m256 even = _mm256_setzero_ps();
    __m256 odd = _mm256_setzero_ps();
    float minimum_terms = 0.0f;
    int64_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        even = add_scaled_dot(w[b], x[b], even, minimum_terms);
        odd = add_scaled_dot(w[b + 1], x[b + 1], odd, minimum_terms);
    }
    if (b < blocks) even = add_scaled_dot(w[b], x[b], even, minimum_terms);
    *y = horizontal_sum_8(_mm256_add_ps(even, odd)) + minimum_terms;
}

// Weight rows are walked in slabs that stay in L2 while every token passes over them; within a
// slab, tiles of kTileRows x kTileTokens reuse each loaded weight block kTileTokens times and
// each activation block kTileRows times.
constexpr size_t kSlabBytes = size_t{256} << 10;

template <class Block>
struct Tiles {
    static constexpr int kRows = SimdCore::kTileRows;
    static constexpr int kTokens = SimdCore::kTileTokens;
    template <int kTileRows, int kTileTokens>
    static constexpr TileDotFn dot = dot_tile<Block, kTileRows, kTileTokens>;
    static constexpr TileDotFn decode_row = decode_row_dot<Block>;
    // int8 activations: 10 KiB for 8192 columns stay in L1 beside the weight stream.
    static constexpr bool decodes_by_row(int64_t) { return true; }
};

template <class Block>
HEARTH_B32 void rows_simd(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                          int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    for_each_tile<Tiles<Block>>(w, prepared, prepared_stride, tokens, row_begin, row_end, y, y_stride, kSlabBytes);
}

struct SimdKernels {
    template <class Block>
    static constexpr MatmulKernel kernel{block32_prepared_row_bytes, prepare_block32_row_avx2, rows_simd<Block>};
};

const MatmulKernel* find_simd_kernel(quant::Type type) { return find_block32_kernel_of<SimdKernels>(type); }

#undef HEARTH_B32

}  // namespace
}  // namespace hearth::cpu::detail
