// The 32-value-block kernels for AVX2 + FMA (+ F16C for the fp16 scales): products by
// maddubs (u8 x s8 pairs to s16, exact since |w| <= 128 and |x| <= 127 keep a pair sum below
// 2^15) then madd with ones to s32 lanes.
#include <immintrin.h>

#include <cmath>

#include "backend/cpu/matmul_block32.h"
#include "backend/cpu/simd_common.h"
#include "common/cpu_features.h"

#define HEARTH_BLOCK32_TARGET "avx2,fma,f16c"

namespace hearth::cpu::detail {
namespace {

struct SimdCore {
    // 2 rows x 4 tokens: 8 accumulators, 4 weight registers and one activation fit the 16 ymm.
    static constexpr int kTileRows = 2;
    static constexpr int kTileTokens = 4;

    // maddubs multiplies unsigned by signed bytes: |w| times x carrying the sign of w.
    __attribute__((target(HEARTH_BLOCK32_TARGET))) static __m256i weight_operand(__m256i levels) {
        return _mm256_abs_epi8(levels);
    }
    __attribute__((target(HEARTH_BLOCK32_TARGET))) static __m256i activation_operand(__m256i x) { return x; }
    __attribute__((target(HEARTH_BLOCK32_TARGET))) static __m256i dot_lanes(__m256i levels, __m256i magnitudes,
                                                                            __m256i x) {
        const __m256i pairs = _mm256_maddubs_epi16(magnitudes, _mm256_sign_epi8(x, levels));
        return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    }

    // Byte j takes mask byte j / 8 (shuffle within each 128-bit lane of the broadcast mask),
    // then tests its bit j % 8.
    __attribute__((target(HEARTH_BLOCK32_TARGET))) static __m256i q5_high_bits(uint32_t mask) {
        const __m256i spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(static_cast<int>(mask)),
            _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
                             3, 3));
        const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
        return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
    }
};

}  // namespace
}  // namespace hearth::cpu::detail

#include "backend/cpu/matmul_block32_simd.h"

namespace hearth::cpu::detail {

// Same bytes as prepare_block32_row_scalar: max is exact in any order, d and 1/d are the same
// scalar operations, and vcvtps2dq rounds ties to even like nearbyint.
__attribute__((target(HEARTH_BLOCK32_TARGET))) void prepare_block32_row_avx2(const float* x, int64_t cols,
                                                                             uint8_t* out) {
    auto* blocks = reinterpret_cast<Block32Activation*>(out);
    for (int64_t b = 0; b < cols / kBlock32; ++b) {
        const float* values = x + b * kBlock32;
        const float d = largest_magnitude(values, kBlock32) / 127;
        const __m256 inverse_d = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
        __m256i q[4];
        for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(values + 8 * k), inverse_d));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(blocks[b].qs), pack_to_bytes_in_order(q));
        const __m256i sums = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        blocks[b].d = d;
        blocks[b].sum = d * static_cast<float>(horizontal_sum_epi32_8(sums));
    }
}

const MatmulKernel* find_block32_kernel_avx2(quant::Type type) {
    if (!cpu_features().avx2 || !cpu_features().fma || !cpu_features().f16c) return nullptr;
    return find_simd_kernel(type);
}

}  // namespace hearth::cpu::detail
