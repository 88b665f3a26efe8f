// The 32-value-block kernels for AVX-512 with VNNI: one vpdpbusd (u8 x s8, four products into
// each s32 lane) replaces AVX2's sign + maddubs + madd, the 5th bits of Q5 come straight from a mask
// register, and 32 vector registers hold a 4 x 4 tile. The vectors stay 256 bits wide (VL): a
// block is 32 bytes, and Zen 4 splits 512-bit operations in two anyway. Without VNNI the AVX2
// kernels serve (matmul.cpp falls back to the narrower ISA).
#include <immintrin.h>

#include "backend/cpu/matmul_block32.h"
#include "common/cpu_features.h"

#define HEARTH_BLOCK32_TARGET "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c"

namespace hearth::cpu::detail {
namespace {

struct SimdCore {
    static constexpr int kTileRows = 4;
    static constexpr int kTileTokens = 4;

    // vpdpbusd multiplies unsigned by signed bytes and adds onto its accumulator. The
    // activations become unsigned by adding 128 (flipping the sign bit, once per block for
    // every row), and the accumulator starts at -128 times each lane's sum of four levels (once
    // per weight block for every token): the lanes come out as exact w * x, in one instruction
    // per block pair instead of a sign and a dot.
    __attribute__((target(HEARTH_BLOCK32_TARGET))) static __m256i weight_operand(__m256i levels) {
        const __m256i sums_times_128 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(-128), levels);
        return _mm256_sub_epi32(_mm256_setzero_si256(), sums_times_128);
    }
    __attribute__((target(HEARTH_BLOCK32_TARGET))) static __m256i activation_operand(__m256i x) {
        return _mm256_xor_si256(x, _mm256_set1_epi8(-128));
    }
    __attribute__((target(HEARTH_BLOCK32_TARGET))) static __m256i dot_lanes(__m256i levels, __m256i correction,
                                                                            __m256i unsigned_x) {
        return _mm256_dpbusd_epi32(correction, unsigned_x, levels);
    }

    __attribute__((target(HEARTH_BLOCK32_TARGET))) static __m256i q5_high_bits(uint32_t mask) {
        return _mm256_maskz_mov_epi8(mask, _mm256_set1_epi8(0x10));
    }
};

}  // namespace
}  // namespace hearth::cpu::detail

#include "backend/cpu/matmul_block32_simd.h"

namespace hearth::cpu::detail {

namespace {

// Q8_0 prompts go to the kernel with 16 rows in the lanes; one token (decoding) stays here.
void q8_0_rows(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
               int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    if (tokens >= 2) return q8_0_lane_rows(w, prepared, prepared_stride, tokens, row_begin, row_end, y, y_stride);
    rows_simd<quant::BlockQ8_0>(w, prepared, prepared_stride, tokens, row_begin, row_end, y, y_stride);
}

constexpr MatmulKernel kQ8_0Kernel{block32_with_sums_row_bytes, prepare_block32_row_with_sums, q8_0_rows};

}  // namespace

const MatmulKernel* find_block32_kernel_avx512(quant::Type type) {
    if (!cpu_features().avx512_vnni) return nullptr;
    if (type == quant::Type::Q8_0) return &kQ8_0Kernel;
    return find_simd_kernel(type);
}

}  // namespace hearth::cpu::detail
