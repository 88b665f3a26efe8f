#include "quant/fp16_rows.h"

#include <immintrin.h>

#include "common/cpu_features.h"
#include "quant/fp16.h"

namespace hearth::quant {
namespace {

constexpr int64_t kLanes = 8;  // one 256-bit register of f32

bool cpu_has_f16c() { return cpu_features().f16c; }

// F16C rounds to nearest even like the reference; only NaN payloads differ (the reference
// makes every NaN 0x7e00 as ggml does), so lanes holding a NaN take the scalar path.
__attribute__((target("avx,f16c"))) int64_t fp32_to_fp16_f16c(const float* in, uint16_t* out, int64_t n) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const __m256 values = _mm256_loadu_ps(in + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(values, values, _CMP_UNORD_Q)) != 0) {
            for (int64_t j = i; j < i + kLanes; ++j) out[j] = fp32_to_fp16(in[j]);
            continue;
        }
        const __m128i halves = _mm256_cvtps_ph(values, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), halves);
    }
    return i;
}

// Widening is exact; F16C keeps a NaN's payload and quiets it, as the reference does.
__attribute__((target("avx,f16c"))) int64_t fp16_to_fp32_f16c(const uint16_t* in, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(halves));
    }
    return i;
}

}  // namespace

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n) {
    int64_t done = cpu_has_f16c() ? fp32_to_fp16_f16c(in, out, n) : 0;
    for (; done < n; ++done) out[done] = fp32_to_fp16(in[done]);
}

void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
    int64_t done = cpu_has_f16c() ? fp16_to_fp32_f16c(in, out, n) : 0;
    for (; done < n; ++done) out[done] = fp16_to_fp32(in[done]);
}

}  // namespace hearth::quant
