// AVX-512 (F/BW/DQ/VL) K-quant kernels, with VNNI when the CPU has it. The integer method is
// the scalar kernels' (matmul_k_quants_scalar.cpp); here one zmm holds 64 weight levels as
// unsigned bytes, and per token:
//   pairs = maddubs(levels, x)          64 u8 x s8 products, summed in pairs to int16
//   sum  += madd(pairs, scales)         times the sub-block's scale, summed in pairs to int32
// (one vpdpwssd with VNNI). The int16 pairs never saturate: levels are at most 63 and |x| at
// most 127, so a pair is at most 2 * 63 * 127 = 16002.
//
// A weight block is unpacked once (levels and scale vectors in registers) and used for a tile
// of kTileTokens tokens. Each token's f32 accumulator sees the same operations in the same order
// whether it sits in a full tile or is a tail token handled alone, so results do not depend on
// the tiling.
#include <immintrin.h>

// GCC 12's _mm512_undefined_* (inside cvtepi32_ps, set1 and friends) initialize a variable with
// itself, which -Wall reports at every use (GCC bug 105593); the values are always overwritten.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <array>
#include <cstdint>
#include <type_traits>

#include "backend/cpu/matmul_k_quants.h"
#include "backend/cpu/simd_common.h"
#include "quant/iq4_grid.h"
#include "quant/q2_k.h"
#include "quant/q3_k.h"
#include "quant/q4_k.h"
#include "quant/q5_k.h"
#include "quant/q6_k.h"
#include "quant/q8_k.h"

// A target attribute, not a function: every function here is compiled for AVX-512.
#define HEARTH_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))

namespace hearth::cpu::detail::k_quants {

namespace {

using quant::BlockQ8K;

// Tokens per tile: the unpacked block (8-9 zmm) and 8 accumulators fit the 32 registers.
// A/B on Zen 4 (pp512, 4096 x 4096, best of 3 ms, a shared machine: +-10%): 8 vs 4 tokens
// Q4_K 136 vs 141, Q6_K 120 vs 131; 8 vs 16 tokens Q4_K 139 vs 128, Q6_K 141 vs 149 (spills).
constexpr int kTileTokens = 8;

// sum + madd(a, b). With VNNI one vpdpwssd; written as inline assembly so that the rest of the
// file needs no VNNI target and the non-VNNI kernels can never contain a VNNI instruction.
template <bool kVnni>
HEARTH_AVX512 inline __m512i add_products_of_pairs(__m512i sum, __m512i a, __m512i b) {
    if constexpr (kVnni) {
        __asm__("vpdpwssd %[b], %[a], %[sum]" : [sum] "+v"(sum) : [a] "v"(a), [b] "v"(b));
        return sum;
    } else {
        return _mm512_add_epi32(sum, _mm512_madd_epi16(a, b));
    }
}

HEARTH_AVX512 inline float fp16_to_f32(uint16_t half) {
    return _cvtsh_ss(half);
}

// A zmm of int32 lanes, lanes 0-7 `low` and lanes 8-15 `high`.
HEARTH_AVX512 inline __m512i halves_epi32(int low, int high) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(low)), _mm256_set1_epi32(high), 1);
}

// 8 signed bytes as 8 int32 lanes each holding the byte twice, as int16 (v, v): the int16
// multiplier madd wants for every pair in a sub-block.
HEARTH_AVX512 inline __m256i signed_bytes_to_int16_pairs(uint64_t bytes) {
    const __m256i wide = _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes)));
    return _mm256_or_si256(_mm256_and_si256(wide, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(wide, 16));
}

// Same from 16 signed bytes: 16 int32 lanes of (v, v) as int16.
HEARTH_AVX512 inline __m512i signed_bytes_to_int16_pairs(__m128i bytes) {
    const __m512i wide = _mm512_cvtepi8_epi32(bytes);
    return _mm512_or_si512(_mm512_and_si512(wide, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(wide, 16));
}

// Q4_K / Q5_K scales and mins (scale_min_k4.h) as 16 int16: the 12 packed bytes hold, per
// 32-bit word, scales 0-3 | mins 0-3 (low 6 bits, the top 2 bits being the high bits of 4-7)
// | the low nibbles of scales 4-7 and mins 4-7. Four sub-blocks per lane; the result holds
// s0-3, m0-3, s4-7, m4-7 (see kScaleMinIndex).
HEARTH_AVX512 inline __m256i unpack_scale_min_k4_int16(const uint8_t packed[12]) {
    // 16 bytes: the 4 after the scales are the block's next field, never used.
    const __m128i words = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
    const __m128i scales_mins_words = _mm_shuffle_epi32(words, _MM_SHUFFLE(1, 0, 1, 0));
    const __m128i nibble_words = _mm_shuffle_epi32(words, _MM_SHUFFLE(2, 2, 2, 2));
    const __m128i low = _mm_and_si128(scales_mins_words, _mm_set1_epi8(0x3f));
    const __m128i high = _mm_or_si128(
        _mm_and_si128(_mm_srlv_epi32(nibble_words, _mm_setr_epi32(0, 4, 0, 4)), _mm_set1_epi8(0x0f)),
        _mm_and_si128(_mm_srli_epi32(scales_mins_words, 2), _mm_set1_epi8(0x30)));
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(low, high));
}

// Where scale j and min j sit in unpack_scale_min_k4_int16's result.
constexpr int16_t scale_index(int j) {
    return static_cast<int16_t>(j < 4 ? j : j + 4);
}
constexpr int16_t min_index(int j) {
    return static_cast<int16_t>(j < 4 ? j + 4 : j + 8);
}

struct ScaleMinIndex {
    alignas(64) int16_t scales[4][32];  // group g: 16 x scale 2g, then 16 x scale 2g + 1
    alignas(32) int16_t mins[16];       // min j at j < 8 (the rest unused)
};

constexpr ScaleMinIndex make_scale_min_index() {
    ScaleMinIndex index{};
    for (int g = 0; g < 4; ++g) {
        for (int i = 0; i < 32; ++i) index.scales[g][i] = scale_index(2 * g + i / 16);
    }
    for (int j = 0; j < 8; ++j) index.mins[j] = min_index(j);
    return index;
}

constexpr ScaleMinIndex kScaleMinIndex = make_scale_min_index();

// One weight block unpacked for the tile: four zmm of 64 levels (0..63, or |level| for signed
// formats) and their scale pairs.
struct Unpacked {
    __m512i levels[4];
    __mmask64 negative[4];  // signed formats: which levels are negative
    __m512i scales[4];
    // Offsets (Q3_K, Q6_K): -offset * scale_j per Q8_K group sum, added to the integer sum.
    __m512i bias;
    // Mins (Q2_K): min of the sub-block of each Q8_K group sum, times -dmin * x.d.
    __m256i mins;
    // Mins per 32 values (Q4_K, Q5_K): dmin * min_j of sub-block j, as f32 (see min_sums_of).
    __m256 scaled_mins;
    float d;
    float dmin;
};

HEARTH_AVX512 inline __m512i zero_extend(__m256i v) {
    return _mm512_inserti64x4(_mm512_setzero_si512(), v, 0);
}

// Byte l of a 32-byte Q4_K/Q5_K chunk holds value l (low nibble) and 32 + l (high nibble): the
// chunk broadcast to both halves and shifted by 0 and 4 gives 64 consecutive levels, in the
// order of the Q8_K quants.
HEARTH_AVX512 inline __m512i nibbles_low_then_high(const uint8_t* bytes32) {
    const __m512i bytes =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes32)));
    const __m512i shifts = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(bytes, shifts), _mm512_set1_epi8(0x0f));
}

// Scale vectors of 8 sub-blocks of 32 from int16 pairs (IQ4_XS): group g = sub-blocks 2g, 2g+1.
HEARTH_AVX512 inline void scales_of_32s(__m256i pairs, __m512i scales[4]) {
    const __m512i all = _mm512_castsi256_si512(pairs);
    for (int g = 0; g < 4; ++g) scales[g] = _mm512_permutexvar_epi32(halves_epi32(2 * g, 2 * g + 1), all);
}

// Scale vectors of the 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K): group g = sub-blocks 4g..4g+3.
HEARTH_AVX512 inline void scales_of_16s(__m512i pairs, __m512i scales[4]) {
    const __m512i quarter =
        _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 2);
    for (int g = 0; g < 4; ++g) {
        scales[g] = _mm512_permutexvar_epi32(_mm512_add_epi32(quarter, _mm512_set1_epi32(4 * g)), pairs);
    }
}

// Levels of values 64g + [0, 64) in the Q2_K layout (low 2 bits of Q3_K): value 128h + 32k + l
// is bits 2k, 2k+1 of qs[32h + l], so group g takes k = 2(g % 2) and 2(g % 2) + 1 of h = g / 2.
HEARTH_AVX512 inline __m512i two_bit_levels(const uint8_t qs[64], int g) {
    const __m512i bytes =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (g / 2))));
    const short shift = static_cast<short>(4 * (g % 2));
    const __m512i shifts =
        _mm512_inserti64x4(_mm512_set1_epi16(shift), _mm256_set1_epi16(static_cast<short>(shift + 2)), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(bytes, shifts), _mm512_set1_epi8(3));
}

// Adds `amount` to the levels of values 64g + [0, 64) whose bit (value / 32) is set in the
// 32-byte mask (Q5_K's 5th bit, Q3_K's 3rd): bit 2g of mask[l] for the low half, 2g + 1 above.
HEARTH_AVX512 inline __m512i add_high_bit(__m512i levels, const uint8_t mask[32], int g, char amount) {
    const __m512i bytes = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(mask)));
    const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (2 * g))),
                                           _mm256_set1_epi8(static_cast<char>(2 << (2 * g))), 1);
    return _mm512_mask_add_epi8(levels, _mm512_test_epi8_mask(bytes, bit), levels, _mm512_set1_epi8(amount));
}

// The scales, mins and super-scales of a Q4_K or Q5_K block (the same header).
template <class Block>
HEARTH_AVX512 inline void unpack_scales_and_mins(const Block& block, Unpacked& u) {
        const __m512i scales_mins = _mm512_castsi256_si512(unpack_scale_min_k4_int16(block.header.scales));
        for (int g = 0; g < 4; ++g) {
            u.scales[g] = _mm512_permutexvar_epi16(_mm512_load_si512(kScaleMinIndex.scales[g]), scales_mins);
        }
        const __m128i mins = _mm256_castsi256_si128(
            _mm256_permutexvar_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(kScaleMinIndex.mins)),
                                     _mm512_castsi512_si256(scales_mins)));
        u.d = fp16_to_f32(block.header.d);
        u.dmin = fp16_to_f32(block.header.dmin);
        u.scaled_mins = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(mins)), _mm256_set1_ps(u.dmin));
}

struct Q4K : Q4KFormat {
    static constexpr bool kMinsPer32 = true;
    HEARTH_AVX512 static inline void unpack(const Block& block, Unpacked& u) {
        for (int g = 0; g < 4; ++g) u.levels[g] = nibbles_low_then_high(block.qs + 32 * g);
        unpack_scales_and_mins(block, u);
    }
};

struct Q5K : Q5KFormat {
    static constexpr bool kMinsPer32 = true;
    HEARTH_AVX512 static inline void unpack(const Block& block, Unpacked& u) {
        for (int g = 0; g < 4; ++g)
            u.levels[g] = add_high_bit(nibbles_low_then_high(block.qs + 32 * g), block.qh, g, 16);
        unpack_scales_and_mins(block, u);
    }
};

struct Q6K : Q6KFormat {
    static constexpr bool kMinsPer32 = false;
    HEARTH_AVX512 static inline void unpack(const Block& block, Unpacked& u) {
        // Values 128h + [0, 64) are the low nibbles of ql[64h .. 64h + 63], values 128h + [64, 128)
        // the high nibbles; their 2 high bits are bits (0,1 | 2,3) resp. (4,5 | 6,7) of qh[32h + l].
        const __m512i low4 = _mm512_set1_epi8(0x0f);
        const __m512i bits45 = _mm512_set1_epi8(0x30);
        const __m512i shift_up = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        const __m512i shift_down = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = _mm512_loadu_si512(block.ql + 64 * h);
            const __m512i qh = _mm512_broadcast_i64x4(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qh + 32 * h)));
            const __m512i high_01 = _mm512_and_si512(_mm512_sllv_epi16(qh, shift_up), bits45);
            const __m512i high_23 = _mm512_and_si512(_mm512_srlv_epi16(qh, shift_down), bits45);
            u.levels[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, low4), high_01);
            u.levels[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), high_23);
        }
        const __m128i scale_bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.scales));
        scales_of_16s(signed_bytes_to_int16_pairs(scale_bytes), u.scales);
        // The stored level is q + 32: subtract 32 * scale_j * bsum_j.
        u.bias = zero_extend(_mm256_mullo_epi16(_mm256_cvtepi8_epi16(scale_bytes), _mm256_set1_epi16(-32)));
        u.d = fp16_to_f32(block.d);
        u.dmin = 0;
    }
};

// The 16 Q3_K scales, stored + 32, as bytes (q3_k_stored_scale_words).
HEARTH_AVX512 inline __m128i q3_k_scales(const uint8_t packed[12]) {
    const std::array<uint32_t, 4> words = q3_k_stored_scale_words(packed);
    return _mm_setr_epi32(static_cast<int>(words[0]), static_cast<int>(words[1]), static_cast<int>(words[2]),
                          static_cast<int>(words[3]));
}

struct Q3K : Q3KFormat {
    static constexpr bool kMinsPer32 = false;
    HEARTH_AVX512 static inline void unpack(const Block& block, Unpacked& u) {
        // Level q in 0..7 (value q - 4): 2 low bits, plus 4 where the hmask bit is set.
        for (int g = 0; g < 4; ++g)
            u.levels[g] = add_high_bit(two_bit_levels(block.qs, g), block.hmask, g, 4);
        const __m128i scale_bytes = _mm_sub_epi8(q3_k_scales(block.scales), _mm_set1_epi8(32));
        scales_of_16s(signed_bytes_to_int16_pairs(scale_bytes), u.scales);
        u.bias = zero_extend(_mm256_mullo_epi16(_mm256_cvtepi8_epi16(scale_bytes), _mm256_set1_epi16(-4)));
        u.d = fp16_to_f32(block.d);
        u.dmin = 0;
    }
};

struct Q2K : Q2KFormat {
    static constexpr bool kMinsPer32 = false;
    HEARTH_AVX512 static inline void unpack(const Block& block, Unpacked& u) {
        for (int g = 0; g < 4; ++g) u.levels[g] = two_bit_levels(block.qs, g);
        // Byte j: scale of sub-block j in the low nibble, min in the high nibble.
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.scales));
        const __m128i low4 = _mm_set1_epi8(0x0f);
        scales_of_16s(signed_bytes_to_int16_pairs(_mm_and_si128(bytes, low4)), u.scales);
        u.mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4));
        u.d = fp16_to_f32(block.d);
        u.dmin = fp16_to_f32(block.dmin);
    }
};

struct IQ4XS : IQ4XSFormat {
    static constexpr bool kMinsPer32 = false;
    // Grid levels are signed (-127..113), so the kernel multiplies |level| by x with the sign of
    // the level moved onto x; no level is 0, so no sign is lost.
    HEARTH_AVX512 static inline void unpack(const Block& block, Unpacked& u) {
        const __m512i grid =
            _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4Grid)));
        // Group g = sub-blocks 2g, 2g + 1, 16 bytes each: byte l holds value l (low nibble) and
        // 16 + l (high nibble) of its sub-block. Each 16 bytes go to two 128-bit lanes, shifted
        // by 0 and 4.
        const __m512i shifts = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0,
                                                0x0004000400040004, 0x0004000400040004, 0, 0);
        for (int g = 0; g < 4; ++g) {
            const __m512i pair = _mm512_castsi256_si512(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs + 32 * g)));
            const __m512i bytes = _mm512_shuffle_i64x2(pair, pair, _MM_SHUFFLE(1, 1, 0, 0));
            const __m512i indices =
                _mm512_and_si512(_mm512_srlv_epi16(bytes, shifts), _mm512_set1_epi8(0x0f));
            const __m512i values = _mm512_shuffle_epi8(grid, indices);
            u.levels[g] = _mm512_abs_epi8(values);
            u.negative[g] = _mm512_movepi8_mask(values);
        }
        scales_of_32s(signed_bytes_to_int16_pairs(iq4_xs_scale_bytes(block)), u.scales);
        u.d = fp16_to_f32(block.d);
        u.dmin = 0;
    }
};

// Q4_K and Q5_K take their min term from the min sums prepared beside the activations
// (kMinsPer32; see matmul_k_quants.h).
// The f32 accumulators of one token after one more block: acc for the scaled integer sums,
// min_acc (Q4_K, Q5_K) for the min terms, subtracted at the end.
template <class Format, bool kVnni>
HEARTH_AVX512 inline void accumulate_block(const Unpacked& u, const BlockQ8K& x, const float* min_sums, __m512& acc,
                                           __m256& min_acc) {
    // Two partial sums halve the chain of dependent multiply-adds (decoding is latency-bound).
    __m512i partial[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int g = 0; g < 4; ++g) {
        __m512i xg = _mm512_loadu_si512(x.qs + 64 * g);
        if constexpr (Format::kSigned)
            xg = _mm512_mask_sub_epi8(xg, u.negative[g], _mm512_setzero_si512(), xg);
        const __m512i pairs = _mm512_maddubs_epi16(u.levels[g], xg);
        partial[g % 2] = add_products_of_pairs<kVnni>(partial[g % 2], pairs, u.scales[g]);
    }
    __m512i sum = _mm512_add_epi32(partial[0], partial[1]);
    if constexpr (Format::kHasBias) {
        const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums));
        sum = add_products_of_pairs<kVnni>(sum, zero_extend(bsums), u.bias);
    }
    const __m512 x_scale = _mm512_set1_ps(x.d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(_mm512_set1_ps(u.d), x_scale), acc);
    if constexpr (Format::kMinsPer32) {
        min_acc = _mm256_fmadd_ps(u.scaled_mins, _mm256_loadu_ps(min_sums), min_acc);
    } else if constexpr (Format::kHasMins) {
        const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums));
        const __m256i mins = _mm256_madd_epi16(bsums, u.mins);
        const __m512 mins_f32 = _mm512_insertf32x8(_mm512_setzero_ps(), _mm256_cvtepi32_ps(mins), 0);
        acc = _mm512_fnmadd_ps(mins_f32, _mm512_mul_ps(_mm512_set1_ps(u.dmin), x_scale), acc);
    }
}

template <class Format, bool kVnni, int kTokens>
HEARTH_AVX512 void tile_of(const uint8_t* weight_row, size_t /*row_bytes: one row*/, int64_t cols,
                           const uint8_t* prepared, size_t prepared_stride, float* y, int64_t y_stride) {
    const int64_t blocks = cols / BlockQ8K::kElems;
    const auto* w = reinterpret_cast<const typename Format::Block*>(weight_row);
    __m512 acc[kTokens];
    __m256 min_acc[kTokens];
    for (int t = 0; t < kTokens; ++t) {
        acc[t] = _mm512_setzero_ps();
        min_acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < blocks; ++b) {
        Unpacked u;
        Format::unpack(w[b], u);
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) {
            const uint8_t* row = prepared + t * prepared_stride;
            const float* min_sums = Format::kMinsPer32 ? min_sums_of(row, blocks) + 8 * b : nullptr;
            accumulate_block<Format, kVnni>(u, reinterpret_cast<const BlockQ8K*>(row)[b], min_sums, acc[t],
                                            min_acc[t]);
        }
    }
    for (int t = 0; t < kTokens; ++t) {
        float result = _mm512_reduce_add_ps(acc[t]);
        if constexpr (Format::kMinsPer32) result -= horizontal_sum_8(min_acc[t]);
        y[t * y_stride] = result;
    }
}

template <class Format, bool kVnni>
constexpr const MatmulKernel* kKernel =
    Format::kMinsPer32
        ? &kMinSumsTileKernel<kTileTokens, tile_of<Format, kVnni, kTileTokens>, tile_of<Format, kVnni, 1>>
        : &kRowTileKernel<kTileTokens, tile_of<Format, kVnni, kTileTokens>, tile_of<Format, kVnni, 1>>;

// With VNNI, Q4_K and Q5_K prompts go to the kernel with 16 rows in the lanes
// (matmul_k_quants_lanes.cpp); one token (decoding) stays here, a row at a time.
template <class Format, TileDotFn one_token,
          void (*lane_rows)(const WeightMatrix&, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t)>
void decode_here_prompt_in_lanes(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride,
                                 int64_t tokens, int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    if (tokens >= 2) return lane_rows(w, prepared, prepared_stride, tokens, row_begin, row_end, y, y_stride);
    rows<1, one_token, one_token>(w, prepared, prepared_stride, tokens, row_begin, row_end, y, y_stride);
}

template <class Format, auto lane_rows>
constexpr MatmulKernel kLaneKernel{q8_k_with_min_sums_row_bytes, quantize_row_to_q8_k_with_min_sums,
                                   decode_here_prompt_in_lanes<Format, tile_of<Format, true, 1>, lane_rows>};

template <class Format>
const MatmulKernel* kernel(bool vnni) {
    if (vnni) {
        if constexpr (std::is_same_v<Format, Q4K>) return &kLaneKernel<Format, q4_k_lane_rows>;
        if constexpr (std::is_same_v<Format, Q5K>) return &kLaneKernel<Format, q5_k_lane_rows>;
    }
    return vnni ? kKernel<Format, true> : kKernel<Format, false>;
}

}  // namespace

const MatmulKernel* find_avx512_kernel(quant::Type type, bool vnni) {
    using quant::Type;
    switch (type) {
        case Type::Q4_K:
            return kernel<Q4K>(vnni);
        case Type::Q5_K:
            return kernel<Q5K>(vnni);
        case Type::Q6_K:
            return kernel<Q6K>(vnni);
        case Type::Q3_K:
            return kernel<Q3K>(vnni);
        case Type::Q2_K:
            return kernel<Q2K>(vnni);
        case Type::IQ4_XS:
            return kernel<IQ4XS>(vnni);
        default:
            return nullptr;
    }
}

}  // namespace hearth::cpu::detail::k_quants
