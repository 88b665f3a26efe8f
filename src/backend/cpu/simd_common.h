// Building blocks the SIMD kernels share: horizontal reductions in one fixed order, and int32
// lanes packed back to bytes in element order. Each is compiled for AVX or AVX2 alone, a subset
// of every kernel's target, so it inlines into all of them.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace hearth::cpu::detail {

// The lanes of an 8-float vector summed: halves, then pairs, then the last two.
__attribute__((target("avx"))) inline float horizontal_sum_8(__m256 v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
}

// The lanes of eight int32 summed (exact in any order).
__attribute__((target("avx2"))) inline int32_t horizontal_sum_epi32_8(__m256i v) {
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4e));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xb1));
    return _mm_cvtsi128_si32(sum);
}

// The largest |x| of `count` floats (a multiple of 8). vmaxps returns its second operand when
// the first is NaN, so a NaN never wins, as in the scalar references' strict comparisons.
__attribute__((target("avx"))) inline float largest_magnitude(const float* values, int64_t count) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    __m256 largest = _mm256_setzero_ps();
    for (int64_t j = 0; j < count; j += 8)
        largest = _mm256_max_ps(_mm256_andnot_ps(sign_bit, _mm256_loadu_ps(values + j)), largest);
    __m128 half = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
    half = _mm_max_ps(half, _mm_movehl_ps(half, half));
    half = _mm_max_ss(half, _mm_movehdup_ps(half));
    return _mm_cvtss_f32(half);
}

// 32 int32 values (q[0] holds elements 0-7, q[3] elements 24-31), each within int8, as 32
// bytes in element order: the packs interleave the 128-bit lanes, the permute undoes it.
__attribute__((target("avx2"))) inline __m256i pack_to_bytes_in_order(const __m256i q[4]) {
    return _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])),
        _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace hearth::cpu::detail
