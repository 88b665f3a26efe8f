// The float-weight kernels for AVX2 + FMA + F16C: 8 f32 lanes; F16 widens with vcvtph2ps,
// BF16 by zero-extending to 32 bits and shifting into the top half.
#include <immintrin.h>

#include "backend/cpu/matmul_float.h"
#include "backend/cpu/simd_common.h"
#include "common/cpu_features.h"

#define HEARTH_FLOAT_TARGET "avx2,fma,f16c"

namespace hearth::cpu::detail {
namespace {

#define HEARTH_FLT_AVX2 __attribute__((target(HEARTH_FLOAT_TARGET)))

struct SimdFloat {
    using Vec = __m256;
    static constexpr int kLanes = 8;
    // 3 rows x 4 tokens: 12 accumulators, 3 weight vectors and one activation fill the 16 ymm.
    static constexpr int kTileRows = 3;
    static constexpr int kTileTokens = 4;

    HEARTH_FLT_AVX2 static __m256 zero() { return _mm256_setzero_ps(); }
    HEARTH_FLT_AVX2 static __m256 load(F32Weights, const float* w) { return _mm256_loadu_ps(w); }
    HEARTH_FLT_AVX2 static __m256 load(F16Weights, const uint16_t* w) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    }
    HEARTH_FLT_AVX2 static __m256 load(BF16Weights, const uint16_t* w) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    }
    HEARTH_FLT_AVX2 static __m256 load_activations(const float* x) { return _mm256_loadu_ps(x); }
    HEARTH_FLT_AVX2 static __m256 round_to_f16(__m256 v, uint16_t* out) {
        const __m128i halves = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), halves);
        return _mm256_cvtph_ps(halves);
    }
    HEARTH_FLT_AVX2 static void store_widened(float* out, __m256 v) { _mm256_storeu_ps(out, v); }
    HEARTH_FLT_AVX2 static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
    HEARTH_FLT_AVX2 static __m256 fmadd(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
    HEARTH_FLT_AVX2 static float horizontal_sum(__m256 v) { return horizontal_sum_8(v); }
};

#undef HEARTH_FLT_AVX2

}  // namespace
}  // namespace hearth::cpu::detail

#include "backend/cpu/matmul_float_simd.h"

namespace hearth::cpu::detail {

const MatmulKernel* find_float_kernel_avx2(quant::Type type) {
    if (!cpu_features().avx2 || !cpu_features().fma || !cpu_features().f16c) return nullptr;
    return find_float_simd_kernel(type);
}

}  // namespace hearth::cpu::detail
