// The lanes of an 8-float vector summed in one fixed order (halves, then pairs, then the last
// two), shared by the SIMD matmul kernels so that each reduces the same way on every ISA.
// Compiled for AVX alone, a subset of every kernel's target, so it inlines into all of them.
#pragma once

#include <immintrin.h>

namespace hearth::cpu::detail {

__attribute__((target("avx"))) inline float horizontal_sum_8(__m256 v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
}

}  // namespace hearth::cpu::detail
