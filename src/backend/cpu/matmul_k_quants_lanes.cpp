// The AVX-512 VNNI prompt kernels of Q4_K and Q5_K in the file's layout (two tokens or more): 16
// weight rows in the 16 lanes of a vector, so that everything done per sub-block and per block is
// done once for 16 rows instead of once per row. (A model's Q4_K and Q6_K weights are repacked
// into such a layout once at load time, matmul_k_quants_repacked.cpp; this file serves Q5_K and
// callers that matmul on the file's bytes directly.)
//
// The row-at-a-time kernels (matmul_k_quants_avx512.cpp) hold 64 values of one row in a vector,
// so every sub-block scale costs a multiply per 64 values and every block a conversion and an
// FMA per row and token: about 14 cycles per block and token, against the 4 that its 256 byte
// products take at one vpdpbusd a cycle. Here lane r of a vector holds 4 consecutive levels of
// row r; one vpdpbusd against 4 activation bytes broadcast to every lane adds them to 16 rows at
// once, and after the 8 quads of a sub-block lane r holds that row's integer sub-block sum. The
// scale is one 16-lane multiply per sub-block, the block's f32 work one conversion and FMA, and
// the min term (from the min sums prepared beside the activations, see matmul_k_quants.h) 8
// FMAs per block, each for 16 rows.
//
// The weights are not in that layout on disk: each thread repacks its 16 rows at a time into a
// buffer of its own (5 KiB per super-block of 16 rows: levels as bytes, scales and mins
// unpacked) and streams every token of the call past them while they sit in L1/L2. A
// prompt of 512 tokens pays one repack per 512 uses; the repack is vector gathers and masks,
// a few percent of the work even for two tokens.
//
// Every output element sees the same operations in the same order whatever lane, row group or
// token tile it falls in: its integer sums are exact, and its f32 accumulator runs over the
// blocks in order, block term then the 8 min terms. A row range that is not a multiple of 16
// pads the last group with copies of its last row and stores only the real ones.
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backend/cpu/matmul_k_quants.h"
#include "backend/cpu/row_lanes.h"
#include "quant/q4_k.h"
#include "quant/q5_k.h"
#include "quant/q8_k.h"
#include "quant/scale_min_k4.h"

namespace hearth::cpu::detail::k_quants {

namespace {

using quant::BlockQ8K;

// Tokens per tile: 3 accumulators each (sub-block, block, f32) in 24 of the 32 registers.
constexpr int kTileTokens = 8;

// One super-block of 16 weight rows, as the kernel reads it.
struct alignas(64) LaneBlock {
    uint8_t quads[64][kLanes][4];  // levels 4q .. 4q + 3 of row r (0..15, or 0..31 for Q5_K)
    int32_t scales[8][kLanes];     // scale of sub-block j of row r
    float scaled_mins[8][kLanes];  // dmin * min_j of row r
    float d[kLanes];
};

// Byte l of 32-byte chunk c holds value 64c + l in the low nibble and 64c + 32 + l in the high
// one, so dword k of chunk c gives quads 16c + k (low nibbles) and 16c + 8 + k (high).
template <class Block>
HEARTH_VNNI inline void repack_nibbles(const uint8_t* base, __m512i row_offsets, LaneBlock& out) {
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    for (int c = 0; c < 4; ++c) {
        for (int k = 0; k < 8; ++k) {
            const __m512i bytes = gather_dwords(base, row_offsets, offsetof(Block, qs) + 32 * c + 4 * k);
            _mm512_store_si512(out.quads[16 * c + k], _mm512_and_si512(bytes, low4));
            _mm512_store_si512(out.quads[16 * c + 8 + k],
                               _mm512_and_si512(_mm512_srli_epi32(bytes, 4), low4));
        }
    }
}

// Q5_K's 5th bits: value 64c + l is bit 2c of qh[l] and value 64c + 32 + l bit 2c + 1, so dword
// k of qh holds them for quads 16c + k and 16c + 8 + k.
HEARTH_VNNI inline void add_q5_k_high_bits(const uint8_t* base, __m512i row_offsets, LaneBlock& out) {
    const __m512i one_per_byte = _mm512_set1_epi8(1);
    for (int k = 0; k < 8; ++k) {
        const __m512i bits = gather_dwords(base, row_offsets, offsetof(quant::BlockQ5K, qh) + 4 * k);
        for (int c = 0; c < 4; ++c) {
            for (int half = 0; half < 2; ++half) {
                const int q = 16 * c + 8 * half + k;
                const __m512i shifted = _mm512_srlv_epi32(bits, _mm512_set1_epi32(2 * c + half));
                const __m512i high = _mm512_slli_epi32(_mm512_and_si512(shifted, one_per_byte), 4);
                _mm512_store_si512(out.quads[q], _mm512_or_si512(_mm512_load_si512(out.quads[q]), high));
            }
        }
    }
}

// The scales, mins and super-scales of the header, row by row (16 x 8 numbers per block).
HEARTH_VNNI inline void repack_header(const quant::ScaleMinHeader* const headers[kLanes], LaneBlock& out) {
    for (int r = 0; r < kLanes; ++r) {
        const quant::ScaleMinHeader& h = *headers[r];
        const float dmin = _cvtsh_ss(h.dmin);
        out.d[r] = _cvtsh_ss(h.d);
        for (int j = 0; j < 8; ++j) {
            const quant::ScaleMin sm = quant::unpack_scale_min_k4(h.scales, j);
            out.scales[j][r] = sm.scale;
            out.scaled_mins[j][r] = static_cast<float>(sm.min) * dmin;
        }
    }
}

// Repacks rows [first, first + rows) of w (rows <= 16; missing lanes repeat the last row).
template <class Block>
HEARTH_VNNI void repack_group(const WeightMatrix& w, int64_t first, int rows, int64_t blocks,
                              LaneBlock* out) {
    const GroupRows group_rows(rows, w.row_bytes);
    const __m512i row_offsets = group_rows.vector();
    const uint8_t* group = w.data + first * w.row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* base = group + b * sizeof(Block);
        repack_nibbles<Block>(base, row_offsets, out[b]);
        if constexpr (std::is_same_v<Block, quant::BlockQ5K>) add_q5_k_high_bits(base, row_offsets, out[b]);
        const quant::ScaleMinHeader* headers[kLanes];
        for (int r = 0; r < kLanes; ++r)
            headers[r] = reinterpret_cast<const quant::ScaleMinHeader*>(base + group_rows.offsets[r]);
        repack_header(headers, out[b]);
    }
}

// y[t * y_stride + r] for the rows of `valid` and kTokens tokens (row t of prepared at t * stride).
template <int kTokens>
HEARTH_VNNI void lane_tile(const LaneBlock* w, int64_t blocks, const uint8_t* prepared, size_t stride,
                           float* y, int64_t y_stride, __mmask16 valid) {
    const BlockQ8K* x[kTokens];
    const float* min_sums[kTokens];
    __m512 acc[kTokens];
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
        x[t] = reinterpret_cast<const BlockQ8K*>(prepared + t * stride);
        min_sums[t] = min_sums_of(prepared + t * stride, blocks);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < blocks; ++b) {
        const LaneBlock& block = w[b];
        __m512i block_sum[kTokens];
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) block_sum[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; ++j) {
            __m512i sub_sum[kTokens];
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t) sub_sum[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int q = 8 * j; q < 8 * j + 8; ++q) {
                const __m512i levels = _mm512_load_si512(block.quads[q]);
#pragma GCC unroll 8
                for (int t = 0; t < kTokens; ++t) {
                    int32_t quad;
                    std::memcpy(&quad, x[t][b].qs + 4 * q, sizeof(quad));
                    sub_sum[t] = _mm512_dpbusd_epi32(sub_sum[t], levels, _mm512_set1_epi32(quad));
                }
            }
            const __m512i scale = _mm512_load_si512(block.scales[j]);
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t)
                block_sum[t] = _mm512_add_epi32(block_sum[t], _mm512_mullo_epi32(sub_sum[t], scale));
        }
        const __m512 d = _mm512_load_ps(block.d);
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) {
            const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(x[t][b].d));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block_sum[t]), scale, acc[t]);
        }
        for (int j = 0; j < 8; ++j) {
            const __m512 scaled_min = _mm512_load_ps(block.scaled_mins[j]);
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t)
                acc[t] = _mm512_fnmadd_ps(scaled_min, _mm512_set1_ps(min_sums[t][8 * b + j]), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) _mm512_mask_storeu_ps(y + t * y_stride, valid, acc[t]);
}

// What lane_rows needs of a format: its repacked block, the repack, and the tile kernel.
template <class SourceBlock>
struct MinsPer32Lanes {  // Q4_K, Q5_K
    using Repacked = LaneBlock;
    static void repack(const WeightMatrix& w, int64_t first, int rows, int64_t blocks, Repacked* out) {
        repack_group<SourceBlock>(w, first, rows, blocks, out);
    }
    template <int kTokens>
    static void tile(const Repacked* w, int64_t blocks, const uint8_t* prepared, size_t stride, float* y,
                     int64_t y_stride, __mmask16 valid) {
        lane_tile<kTokens>(w, blocks, prepared, stride, y, y_stride, valid);
    }
};

// Every 16 rows of [row_begin, row_end): repacked, then every token in tiles of 8, 4 and 1.
template <class Lanes>
void lane_rows(const WeightMatrix& w, const uint8_t* prepared, size_t stride, int64_t tokens,
               int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    const int64_t blocks = w.cols / BlockQ8K::kElems;
    thread_local std::vector<typename Lanes::Repacked> group;
    if (static_cast<int64_t>(group.size()) < blocks) group.resize(static_cast<size_t>(blocks));
    for_each_row_group(row_begin, row_end, [&](int64_t first, int rows) {
        Lanes::repack(w, first, rows, blocks, group.data());
        for_each_token_tile<kTileTokens, 4>(tokens, [&]<int kTokens>(int64_t t) {
            Lanes::template tile<kTokens>(group.data(), blocks, prepared + t * stride, stride,
                                          y + t * y_stride + first, y_stride, real_rows(rows));
        });
    });
}

}  // namespace

void q4_k_lane_rows(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                    int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    lane_rows<MinsPer32Lanes<quant::BlockQ4K>>(w, prepared, prepared_stride, tokens, row_begin, row_end, y,
                                               y_stride);
}

void q5_k_lane_rows(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                    int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    lane_rows<MinsPer32Lanes<quant::BlockQ5K>>(w, prepared, prepared_stride, tokens, row_begin, row_end, y,
                                               y_stride);
}

}  // namespace hearth::cpu::detail::k_quants
