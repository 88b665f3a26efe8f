// The float-weight kernels for AVX-512: 16 f32 lanes and 32 registers, so a 4 x 4 tile of
// accumulators fits beside its 4 weight vectors.
#include <immintrin.h>

#include "backend/cpu/matmul_float.h"
#include "backend/cpu/simd_common.h"
#include "common/cpu_features.h"

#define HEARTH_FLOAT_TARGET "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"

namespace hearth::cpu::detail {
namespace {

#define HEARTH_FLT_AVX512 __attribute__((target(HEARTH_FLOAT_TARGET)))

struct SimdFloat {
    using Vec = __m512;
    static constexpr int kLanes = 16;
    static constexpr int kTileRows = 4;
    static constexpr int kTileTokens = 4;
    // The zero-masked forms with every lane on: GCC 12 warns (falsely) that the unmasked
    // intrinsics read an uninitialized register.
    static constexpr __mmask16 kAllLanes = 0xffff;

    HEARTH_FLT_AVX512 static __m512 zero() { return _mm512_setzero_ps(); }
    HEARTH_FLT_AVX512 static __m512 load(F32Weights, const float* w) { return _mm512_loadu_ps(w); }
    HEARTH_FLT_AVX512 static __m512 load(F16Weights, const uint16_t* w) {
        return _mm512_maskz_cvtph_ps(kAllLanes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
    }
    HEARTH_FLT_AVX512 static __m512 load(BF16Weights, const uint16_t* w) {
        const __m512i wide = _mm512_maskz_cvtepu16_epi32(kAllLanes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
        return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAllLanes, wide, 16));
    }
    HEARTH_FLT_AVX512 static __m512 load_activations(const float* x) { return _mm512_loadu_ps(x); }
    HEARTH_FLT_AVX512 static __m512 round_to_f16(__m512 v, uint16_t* out) {
        const __m256i halves = _mm512_maskz_cvtps_ph(kAllLanes, v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), halves);
        return _mm512_maskz_cvtph_ps(kAllLanes, halves);
    }
    HEARTH_FLT_AVX512 static void store_widened(float* out, __m512 v) { _mm512_storeu_ps(out, v); }
    HEARTH_FLT_AVX512 static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
    HEARTH_FLT_AVX512 static __m512 fmadd(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
    // The two halves added, then the fixed 8-lane order.
    HEARTH_FLT_AVX512 static float horizontal_sum(__m512 v) {
        return horizontal_sum_8(
            _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1)));
    }
};

#undef HEARTH_FLT_AVX512

}  // namespace
}  // namespace hearth::cpu::detail

#include "backend/cpu/matmul_float_simd.h"

namespace hearth::cpu::detail {

const MatmulKernel* find_float_kernel_avx512(quant::Type type) {
    if (!cpu_features().avx512) return nullptr;
    return find_float_simd_kernel(type);
}

}  // namespace hearth::cpu::detail
