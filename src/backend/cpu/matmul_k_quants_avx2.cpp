// AVX2 + FMA K-quant kernels. The integer method is the scalar kernels'
// (matmul_k_quants_scalar.cpp); here one ymm holds the 32 levels of one group of 32 values as
// unsigned bytes, and per token:
//   pairs = maddubs(levels, x)          32 u8 x s8 products, summed in pairs to int16
//   sum  += madd(pairs, scales)         times the sub-block's scale, summed in pairs to int32
// The int16 pairs never saturate: levels are at most 63 and |x| at most 127, so a pair is at
// most 2 * 63 * 127 = 16002.
//
// A weight block is unpacked once and used for a tile of kTileTokens tokens. Each token's f32
// accumulator sees the same operations in the same order whether it sits in a full tile or is a
// tail token handled alone, so results do not depend on the tiling.
#include <immintrin.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_k_quants.h"
#include "backend/cpu/simd_common.h"
#include "quant/iq4_grid.h"
#include "quant/q2_k.h"
#include "quant/q3_k.h"
#include "quant/q4_k.h"
#include "quant/q5_k.h"
#include "quant/q6_k.h"
#include "quant/q8_k.h"

// A target attribute, not a function: every function here is compiled for AVX2 + FMA + F16C.
#define HEARTH_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace hearth::cpu::detail::k_quants {

namespace {

using quant::BlockQ8K;

// Tokens per tile: with 16 ymm registers the unpacked block lives in L1 (stack) and the tile's
// accumulators and the current group in registers.
constexpr int kTileTokens = 4;

HEARTH_AVX2 inline float fp16_to_f32(uint16_t half) {
    return _cvtsh_ss(half);
}

HEARTH_AVX2 inline __m256i load_256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 8 bytes as 8 int32 lanes each holding the byte twice, as int16 (v | v << 16): the int16
// multiplier madd wants for every pair in a sub-block.
HEARTH_AVX2 inline __m256i bytes_to_int16_pairs(uint64_t bytes) {
    const __m256i wide = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes)));
    return _mm256_or_si256(wide, _mm256_slli_epi32(wide, 16));
}

// Q4_K / Q5_K scales and mins: the 12 packed bytes (scale_min_k4.h) to 8 scale bytes and 8 min
// bytes, four sub-blocks at a time with 32-bit shifts: the high 2 bits of scales/mins 4-7 sit in
// the top 2 bits of bytes 0-3/4-7, their low 4 bits in the nibbles of bytes 8-11.
struct ScaleMinBytes {
    uint64_t scales;
    uint64_t mins;
};

inline ScaleMinBytes unpack_scale_min_k4_bytes(const uint8_t packed[12]) {
    uint32_t words[3];
    std::memcpy(words, packed, sizeof(words));
    constexpr uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kBits45 = 0x30303030;
    const uint32_t scales_low = words[0] & kLow6;
    const uint32_t mins_low = words[1] & kLow6;
    const uint32_t scales_high = (words[2] & kLow4) | ((words[0] >> 2) & kBits45);
    const uint32_t mins_high = ((words[2] >> 4) & kLow4) | ((words[1] >> 2) & kBits45);
    return {scales_low | (uint64_t{scales_high} << 32), mins_low | (uint64_t{mins_high} << 32)};
}

// Same from 8 signed bytes.
HEARTH_AVX2 inline __m256i signed_bytes_to_int16_pairs(uint64_t bytes) {
    const __m256i wide = _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes)));
    return _mm256_or_si256(_mm256_and_si256(wide, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(wide, 16));
}

// One weight block unpacked for the tile: 8 groups of 32 levels (0..63, or |level| for signed
// formats) and their scale pairs.
struct Unpacked {
    __m256i levels[8];
    __m256i signs[8];  // signed formats: the levels with their signs
    __m256i scales[8];
    // Offsets (Q3_K, Q6_K): -offset * scale_j per Q8_K group sum, added to the integer sum.
    __m256i bias;
    // Mins (Q2_K): min of the sub-block of each Q8_K group sum, times -dmin * x.d.
    __m256i mins;
    // Mins per 32 values (Q4_K, Q5_K): dmin * min_j of sub-block j (see matmul_k_quants.h).
    __m256 scaled_mins;
    float d;
    float dmin;
};

// Scale vectors of 8 sub-blocks of 32 (Q4_K, Q5_K): group j is sub-block j.
HEARTH_AVX2 inline void scales_of_32s(__m256i pairs, __m256i scales[8]) {
    for (int j = 0; j < 8; ++j) scales[j] = _mm256_permutevar8x32_epi32(pairs, _mm256_set1_epi32(j));
}

// Scale vectors of 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K) from their signed bytes: group g
// holds sub-blocks 2g (int32 lanes 0-3) and 2g + 1 (lanes 4-7).
HEARTH_AVX2 inline void scales_of_16s(__m128i scale_bytes, __m256i scales[8]) {
    const __m256i scales16 = _mm256_cvtepi8_epi16(scale_bytes);
    // unpacklo/hi work within 128-bit lanes: pairs[0] = scales 0-3, 8-11; pairs[1] = 4-7, 12-15.
    const __m256i pairs[2] = {_mm256_unpacklo_epi16(scales16, scales16),
                              _mm256_unpackhi_epi16(scales16, scales16)};
    for (int g = 0; g < 8; ++g) {
        const int first = 2 * g;  // sub-blocks first, first + 1 (both in the same group of 4)
        const __m256i source = pairs[(first / 4) % 2];
        const int lane = (first % 4) + 4 * (first / 8);
        scales[g] = _mm256_permutevar8x32_epi32(
            source, _mm256_setr_epi32(lane, lane, lane, lane, lane + 1, lane + 1, lane + 1, lane + 1));
    }
}

// Levels of values 32g + [0, 32) in the Q2_K layout (low 2 bits of Q3_K): value 128h + 32k + l
// is bits 2k, 2k+1 of qs[32h + l].
HEARTH_AVX2 inline __m256i two_bit_levels(const uint8_t qs[64], int g) {
    const __m256i bytes = load_256(qs + 32 * (g / 4));
    return _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * (g % 4)), _mm256_set1_epi8(3));
}

// Adds `amount` to the levels of values 32g + [0, 32) whose bit g is set in the 32-byte mask
// (Q5_K's 5th bit, Q3_K's 3rd).
HEARTH_AVX2 inline __m256i add_high_bit(__m256i levels, const uint8_t mask[32], int g, char amount) {
    const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << g));
    const __m256i is_set = _mm256_cmpeq_epi8(_mm256_and_si256(load_256(mask), bit), bit);
    return _mm256_add_epi8(levels, _mm256_and_si256(is_set, _mm256_set1_epi8(amount)));
}

// The scales, mins and super-scales of a Q4_K or Q5_K block (the same header).
template <class Block>
HEARTH_AVX2 inline void unpack_scales_and_mins(const Block& block, Unpacked& u) {
    const ScaleMinBytes bytes = unpack_scale_min_k4_bytes(block.header.scales);
    scales_of_32s(bytes_to_int16_pairs(bytes.scales), u.scales);
    u.d = fp16_to_f32(block.header.d);
    u.dmin = fp16_to_f32(block.header.dmin);
    const __m256i mins = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes.mins)));
    u.scaled_mins = _mm256_mul_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(u.dmin));
}

struct Q4K : Q4KFormat {
    static constexpr bool kMinsPer32 = true;
    // Byte l of chunk c holds value 64c + l (low nibble) and 64c + 32 + l (high nibble).
    HEARTH_AVX2 static inline void unpack(const Block& block, Unpacked& u) {
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        for (int c = 0; c < 4; ++c) {
            const __m256i bytes = load_256(block.qs + 32 * c);
            u.levels[2 * c] = _mm256_and_si256(bytes, low4);
            u.levels[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
        }
        unpack_scales_and_mins(block, u);
    }
};

struct Q5K : Q5KFormat {
    static constexpr bool kMinsPer32 = true;
    // As Q4_K, plus the 5th bit of value 32j + l (sub-block j) in bit j of qh[l].
    HEARTH_AVX2 static inline void unpack(const Block& block, Unpacked& u) {
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        for (int c = 0; c < 4; ++c) {
            const __m256i bytes = load_256(block.qs + 32 * c);
            u.levels[2 * c] = add_high_bit(_mm256_and_si256(bytes, low4), block.qh, 2 * c, 16);
            u.levels[2 * c + 1] =
                add_high_bit(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4), block.qh, 2 * c + 1, 16);
        }
        unpack_scales_and_mins(block, u);
    }
};

struct Q6K : Q6KFormat {
    static constexpr bool kMinsPer32 = false;
    // Group 4h + k (values 128h + 32k + l): low 4 bits from ql[64h + 32(k % 2) + l] (low nibble
    // for k < 2, high for k >= 2), high 2 bits from bits 2k, 2k+1 of qh[32h + l], moved to bits
    // 4, 5 with 16-bit shifts (what crosses a byte boundary is masked off).
    HEARTH_AVX2 static inline void unpack(const Block& block, Unpacked& u) {
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        const __m256i bits45 = _mm256_set1_epi8(0x30);
        for (int h = 0; h < 2; ++h) {
            const __m256i ql0 = load_256(block.ql + 64 * h);
            const __m256i ql1 = load_256(block.ql + 64 * h + 32);
            const __m256i qh = load_256(block.qh + 32 * h);
            __m256i* levels = u.levels + 4 * h;
            levels[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4),
                                        _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45));
            levels[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4),
                                        _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45));
            levels[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                                        _mm256_and_si256(qh, bits45));
            levels[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                        _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45));
        }
        const __m128i scale_bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.scales));
        scales_of_16s(scale_bytes, u.scales);
        const __m256i scales16 = _mm256_cvtepi8_epi16(scale_bytes);
        // The stored level is q + 32: subtract 32 * scale_j * bsum_j.
        u.bias = _mm256_mullo_epi16(scales16, _mm256_set1_epi16(-32));
        u.d = fp16_to_f32(block.d);
        u.dmin = 0;
    }
};

// The 16 Q3_K scales, stored + 32, as bytes (q3_k_stored_scale_words).
HEARTH_AVX2 inline __m128i q3_k_scales(const uint8_t packed[12]) {
    const std::array<uint32_t, 4> words = q3_k_stored_scale_words(packed);
    return _mm_setr_epi32(static_cast<int>(words[0]), static_cast<int>(words[1]), static_cast<int>(words[2]),
                          static_cast<int>(words[3]));
}

struct Q3K : Q3KFormat {
    static constexpr bool kMinsPer32 = false;
    HEARTH_AVX2 static inline void unpack(const Block& block, Unpacked& u) {
        // Level q in 0..7 (value q - 4): 2 low bits, plus 4 where the hmask bit is set.
        for (int g = 0; g < 8; ++g)
            u.levels[g] = add_high_bit(two_bit_levels(block.qs, g), block.hmask, g, 4);
        const __m128i scale_bytes = _mm_sub_epi8(q3_k_scales(block.scales), _mm_set1_epi8(32));
        scales_of_16s(scale_bytes, u.scales);
        u.bias = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(scale_bytes), _mm256_set1_epi16(-4));
        u.d = fp16_to_f32(block.d);
        u.dmin = 0;
    }
};

struct Q2K : Q2KFormat {
    static constexpr bool kMinsPer32 = false;
    HEARTH_AVX2 static inline void unpack(const Block& block, Unpacked& u) {
        for (int g = 0; g < 8; ++g) u.levels[g] = two_bit_levels(block.qs, g);
        // Byte j: scale of sub-block j in the low nibble, min in the high nibble.
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.scales));
        const __m128i low4 = _mm_set1_epi8(0x0f);
        scales_of_16s(_mm_and_si128(bytes, low4), u.scales);
        u.mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4));
        u.d = fp16_to_f32(block.d);
        u.dmin = fp16_to_f32(block.dmin);
    }
};

struct IQ4XS : IQ4XSFormat {
    static constexpr bool kMinsPer32 = false;
    // Grid levels are signed (-127..113), so the kernel multiplies |level| by x with the sign of
    // the level moved onto x; no level is 0, so no x is zeroed.
    HEARTH_AVX2 static inline void unpack(const Block& block, Unpacked& u) {
        const __m256i grid =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4Grid)));
        const __m128i low4 = _mm_set1_epi8(0x0f);
        for (int j = 0; j < 8; ++j) {
            // Sub-block j: byte l holds value l (low nibble) and 16 + l (high nibble).
            const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs + 16 * j));
            const __m256i indices =
                _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4), _mm_and_si128(bytes, low4));
            u.signs[j] = _mm256_shuffle_epi8(grid, indices);
            u.levels[j] = _mm256_abs_epi8(u.signs[j]);
        }
        scales_of_32s(signed_bytes_to_int16_pairs(iq4_xs_scale_bytes(block)), u.scales);
        u.d = fp16_to_f32(block.d);
        u.dmin = 0;
    }
};

// The f32 accumulators of one token after one more block: acc for the scaled integer sums,
// min_acc (Q4_K, Q5_K) for the min terms, subtracted at the end.
template <class Format>
HEARTH_AVX2 inline void accumulate_block(const Unpacked& u, const BlockQ8K& x, const float* min_sums, __m256& acc,
                                         __m256& min_acc) {
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
        __m256i xg = load_256(x.qs + 32 * g);
        if constexpr (Format::kSigned) xg = _mm256_sign_epi8(xg, u.signs[g]);
        const __m256i pairs = _mm256_maddubs_epi16(u.levels[g], xg);
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, u.scales[g]));
    }
    const __m256i bsums = load_256(x.bsums);
    if constexpr (Format::kHasBias) sum = _mm256_add_epi32(sum, _mm256_madd_epi16(bsums, u.bias));
    const __m256 x_scale = _mm256_set1_ps(x.d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(_mm256_set1_ps(u.d), x_scale), acc);
    if constexpr (Format::kMinsPer32) {
        min_acc = _mm256_fmadd_ps(u.scaled_mins, _mm256_loadu_ps(min_sums), min_acc);
    } else if constexpr (Format::kHasMins) {
        const __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums, u.mins));
        acc = _mm256_fnmadd_ps(mins, _mm256_mul_ps(_mm256_set1_ps(u.dmin), x_scale), acc);
    }
}

template <class Format, int kTokens>
HEARTH_AVX2 void tile_of(const uint8_t* weight_row, size_t /*row_bytes: one row*/, int64_t cols,
                         const uint8_t* prepared, size_t prepared_stride, float* y, int64_t y_stride) {
    const int64_t blocks = cols / BlockQ8K::kElems;
    const auto* w = reinterpret_cast<const typename Format::Block*>(weight_row);
    __m256 acc[kTokens];
    __m256 min_acc[kTokens];
    for (int t = 0; t < kTokens; ++t) {
        acc[t] = _mm256_setzero_ps();
        min_acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < blocks; ++b) {
        Unpacked u;
        Format::unpack(w[b], u);
#pragma GCC unroll 4
        for (int t = 0; t < kTokens; ++t) {
            const uint8_t* row = prepared + t * prepared_stride;
            const float* min_sums = Format::kMinsPer32 ? min_sums_of(row, blocks) + 8 * b : nullptr;
            accumulate_block<Format>(u, reinterpret_cast<const BlockQ8K*>(row)[b], min_sums, acc[t], min_acc[t]);
        }
    }
    for (int t = 0; t < kTokens; ++t) {
        float result = horizontal_sum_8(acc[t]);
        if constexpr (Format::kMinsPer32) result -= horizontal_sum_8(min_acc[t]);
        y[t * y_stride] = result;
    }
}

template <class Format>
constexpr const MatmulKernel* kKernel =
    Format::kMinsPer32 ? &kMinSumsTileKernel<kTileTokens, tile_of<Format, kTileTokens>, tile_of<Format, 1>>
                       : &kRowTileKernel<kTileTokens, tile_of<Format, kTileTokens>, tile_of<Format, 1>>;

}  // namespace

// As quant::quantize_row_q8_k: the value of largest magnitude (the first, if several), scale
// -127 / that value, each quant rounded to nearest with ties to even (vcvtps2dq, as the
// reference's magic-number rounding) and capped at 127, then the sums of each 16.
HEARTH_AVX2 void quantize_row_to_q8_k_avx2(const float* x, int64_t cols, uint8_t* out) {
    auto* blocks = reinterpret_cast<BlockQ8K*>(out);
    for (int64_t b = 0; b < cols / BlockQ8K::kElems; ++b) {
        const float* values = x + b * BlockQ8K::kElems;
        BlockQ8K& block = blocks[b];
        const float magnitude = largest_magnitude(values, BlockQ8K::kElems);
        if (magnitude == 0.0f) {
            block = BlockQ8K{};
            continue;
        }
        int first = 0;
        while (std::fabs(values[first]) != magnitude) ++first;
        const float inverse_scale = -127.0f / values[first];
        const __m256 scale = _mm256_set1_ps(inverse_scale);
        for (int j = 0; j < BlockQ8K::kElems; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; ++k) {
                const __m256i rounded = _mm256_cvtps_epi32(_mm256_mul_ps(scale, _mm256_loadu_ps(values + j + 8 * k)));
                q[k] = _mm256_min_epi32(rounded, _mm256_set1_epi32(127));
            }
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(block.qs + j), pack_to_bytes_in_order(q));
            // Sums of 16: elements j..j+15 are q[0], q[1]; j+16..j+31 are q[2], q[3].
            for (int h = 0; h < 2; ++h)
                block.bsums[j / 16 + h] =
                    static_cast<int16_t>(horizontal_sum_epi32_8(_mm256_add_epi32(q[2 * h], q[2 * h + 1])));
        }
        block.d = 1 / inverse_scale;
    }
}

const MatmulKernel* find_avx2_kernel(quant::Type type) {
    using quant::Type;
    switch (type) {
        case Type::Q4_K:
            return kKernel<Q4K>;
        case Type::Q5_K:
            return kKernel<Q5K>;
        case Type::Q6_K:
            return kKernel<Q6K>;
        case Type::Q3_K:
            return kKernel<Q3K>;
        case Type::Q2_K:
            return kKernel<Q2K>;
        case Type::IQ4_XS:
            return kKernel<IQ4XS>;
        default:
            return nullptr;
    }
}

}  // namespace hearth::cpu::detail::k_quants
