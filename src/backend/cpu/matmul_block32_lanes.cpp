// The AVX-512 VNNI prompt kernel of Q8_0 (two tokens or more): 16 weight rows in the 16 lanes of
// a vector, as the Q4_K/Q5_K one (matmul_k_quants_lanes.cpp), for the same reason. A Q8_0 block
// is only 32 values, so the row-at-a-time tile spends a conversion, a multiply and an FMA per 32
// products of every row and token; here they are spent once per 16 rows.
//
// vpdpbusd multiplies unsigned by signed bytes. The weights are repacked as w + 128 (the sign bit
// flipped, so a level of -128 is fine too) against the activations as prepared, and the
// 128 * sum(x) that adds is taken back through an integer sum prepared beside each activation
// block: the block's sum is exact before it meets the scales, dw * dx rounded once as every
// block32 kernel does. Each thread repacks 16 rows at a time (576 bytes per block of 16 rows) and
// streams every token of the call past them. Every output element sees the same operations in
// the same order whatever lane, row group or token tile it falls in.
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cpu/matmul_block32.h"
#include "backend/cpu/row_lanes.h"
#include "quant/q8_0.h"

namespace hearth::cpu::detail {

size_t block32_with_sums_row_bytes(int64_t cols) {
    return block32_prepared_row_bytes(cols) + static_cast<size_t>(cols / kBlock32) * sizeof(int32_t);
}

void prepare_block32_row_with_sums(const float* x, int64_t cols, uint8_t* out) {
    prepare_block32_row_avx2(x, cols, out);
    const int64_t blocks = cols / kBlock32;
    const auto* prepared = reinterpret_cast<const Block32Activation*>(out);
    for (int64_t b = 0; b < blocks; ++b) {
        int32_t sum = 0;
        for (const int8_t q : prepared[b].qs) sum += q;
        const int32_t correction = -128 * sum;
        std::memcpy(out + block32_prepared_row_bytes(cols) + b * sizeof(int32_t), &correction,
                    sizeof(correction));
    }
}

namespace {

using quant::BlockQ8_0;

// Tokens per tile: 2 accumulators each (block sum, f32) in 16 of the 32 registers.
constexpr int kTileTokens = 8;

struct alignas(64) LaneBlock {
    uint8_t quads[8][kLanes][4];  // levels 4q .. 4q + 3 of row r, plus 128
    float d[kLanes];
};

// Repacks rows [first, first + rows) of w (rows <= 16; missing lanes repeat the last row).
HEARTH_VNNI void repack_group(const WeightMatrix& w, int64_t first, int rows, int64_t blocks,
                              LaneBlock* out) {
    const __m512i row_offsets = GroupRows(rows, w.row_bytes).vector();
    const __m512i sign_bits = _mm512_set1_epi8(static_cast<char>(0x80));
    const uint8_t* group = w.data + first * w.row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* base = group + b * sizeof(BlockQ8_0);
        for (int q = 0; q < 8; ++q) {
            const __m512i levels = gather_dwords(base, row_offsets, offsetof(BlockQ8_0, qs) + 4 * q);
            _mm512_store_si512(out[b].quads[q], _mm512_xor_si512(levels, sign_bits));
        }
        // The fp16 scale is the low half of the dword at the block's start.
        const __m512i scale_dwords = gather_dwords(base, row_offsets, offsetof(BlockQ8_0, d));
        _mm512_store_ps(out[b].d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(scale_dwords)));
    }
}

// y[t * y_stride + r] for the rows of `valid` and kTokens tokens (row t of prepared at t * stride).
template <int kTokens>
HEARTH_VNNI void lane_tile(const LaneBlock* w, int64_t cols, const uint8_t* prepared, size_t stride, float* y,
                           int64_t y_stride, __mmask16 valid) {
    const int64_t blocks = cols / kBlock32;
    const Block32Activation* x[kTokens];
    const int32_t* corrections[kTokens];
    __m512 acc[kTokens];
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
        x[t] = reinterpret_cast<const Block32Activation*>(prepared + t * stride);
        corrections[t] =
            reinterpret_cast<const int32_t*>(prepared + t * stride + block32_prepared_row_bytes(cols));
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < blocks; ++b) {
        const LaneBlock& block = w[b];
        __m512i sum[kTokens];
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) sum[t] = _mm512_set1_epi32(corrections[t][b]);
#pragma GCC unroll 8
        for (int q = 0; q < 8; ++q) {
            const __m512i levels = _mm512_load_si512(block.quads[q]);
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t) {
                int32_t quad;
                std::memcpy(&quad, x[t][b].qs + 4 * q, sizeof(quad));
                sum[t] = _mm512_dpbusd_epi32(sum[t], levels, _mm512_set1_epi32(quad));
            }
        }
        const __m512 d = _mm512_load_ps(block.d);
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) {
            const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(x[t][b].d));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[t]), scale, acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) _mm512_mask_storeu_ps(y + t * y_stride, valid, acc[t]);
}

}  // namespace

void q8_0_lane_rows(const WeightMatrix& w, const uint8_t* prepared, size_t stride, int64_t tokens,
                    int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    const int64_t blocks = w.cols / kBlock32;
    thread_local std::vector<LaneBlock> group;
    if (static_cast<int64_t>(group.size()) < blocks) group.resize(static_cast<size_t>(blocks));
    for_each_row_group(row_begin, row_end, [&](int64_t first, int rows) {
        repack_group(w, first, rows, blocks, group.data());
        for_each_token_tile<kTileTokens, 4>(tokens, [&]<int kTokens>(int64_t t) {
            lane_tile<kTokens>(group.data(), w.cols, prepared + t * stride, stride, y + t * y_stride + first,
                               y_stride, real_rows(rows));
        });
    });
}

}  // namespace hearth::cpu::detail
