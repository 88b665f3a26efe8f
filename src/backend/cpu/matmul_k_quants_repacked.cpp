// Q4_K and Q6_K repacked once at load time (AVX-512 VNNI): 16 weight rows in the 16 lanes of a
// vector, kept in memory in that layout for decoding and prompts alike. (Q6_K: see RepackedQ6K;
// the same method with its offset of 32 taken back through the Q8_K group sums.)
//
// Decoding Q4_K in the GGUF layout is bound by arithmetic on this machine's cores, not by
// memory: every 144-byte block costs ~50 vector operations for one row, a third of them to
// unpack its 12 bytes of packed scales and mins. Repacked, a super-block of 16 rows keeps its
// 4-bit levels packed (2048 bytes) and its scales, mins and super-scales unpacked to bytes and
// fp16 (320 bytes, 3% more than the file), so that a block of 16 rows costs ~185 operations:
// two masks and two vpdpbusd per 2 quads of 16 rows, a scale multiply per sub-block, the min
// term as 4 int16-pair multiply-adds against the activations' 32-value sums, and one f32 step.
//
// Byte i of lane r of nibble vector 4j + k holds quad 8j + k (values 32j + 4k .. + 3 of row r)
// in its low nibble and quad 8j + 4 + k in its high one, so both halves belong to sub-block j.
// The high half is masked in place (16 x its level) into an accumulator of its own, divided by
// 16 exactly once per sub-block.
//
// A token's result goes through the same operations in the same order whatever the token count
// or tile, so a token decoded alone has the bits it has in a batch; any 16-row group of a
// thread's range gives the same bits as any other (rows are lanes).
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_k_quants.h"
#include "backend/cpu/row_lanes.h"
#include "quant/q4_k.h"
#include "quant/q6_k.h"
#include "quant/q8_k.h"
#include "quant/scale_min_k4.h"

namespace hearth::cpu::detail::k_quants {

namespace {

using quant::BlockQ8K;

// Tokens per tile: 4 accumulators each (low and high halves of a sub-block, block, f32).
constexpr int kTileTokens = 6;

// One super-block of 16 rows, header first, so that the kernel reads the matrix as one
// sequential stream (see RepackedQ6K).
struct alignas(64) RepackedQ4K {
    uint8_t scales[8][kLanes];        // scale of sub-block j of row r
    uint8_t min_pairs[4][kLanes][2];  // mins 2p, 2p + 1 of row r
    uint16_t d[kLanes];               // fp16
    uint16_t dmin[kLanes];            // fp16
    uint8_t nibbles[32][kLanes][4];   // see the file comment
};
static_assert(sizeof(RepackedQ4K) == 2368, "16 Q4_K blocks (2304 bytes) with unpacked scales and mins");

// One Q6_K super-block of 16 rows, in the order the kernel reads it: one sequential stream. (With
// the levels and the high bits in two regions, two streams, the same kernel read 1.5x slower
// from memory: matmul_k_quants_bench, 9.6-10.2 against 21-26 GB/s on one core.) Per sub-block j of 16
// values (4 quads): nibble vector k holds quad 4j + k in its low nibbles and quad 4j + 2 + k in
// its high ones, and byte e of lane r of `highs` the 2 high bits of element e of quads
// 4j .. 4j + 3 at bits 0-1, 2-3, 4-5, 6-7. 3360 bytes as in the file, padded to 64.
struct alignas(64) RepackedQ6K {
    int8_t scale_pairs[8][kLanes][2];  // scales 2p, 2p + 1 of row r
    struct SubBlock {
        uint8_t nibbles[2][kLanes][4];
        uint8_t highs[kLanes][4];
    } sub_blocks[16];
    uint16_t d[kLanes];  // fp16
};
static_assert(sizeof(RepackedQ6K) == 3392, "16 Q6_K blocks (3360 bytes) padded to a cache line");

// A prepared activation row: the Q8_K blocks, then per block the 8 sums of 32 quants as int16
// (bsums 2j + 2j+1), the multipliers of the mins.
const int16_t* sums_of_32(const uint8_t* prepared_row, int64_t blocks) {
    return reinterpret_cast<const int16_t*>(prepared_row + blocks * sizeof(BlockQ8K));
}

}  // namespace

size_t q4_k_repacked_bytes(int64_t rows, int64_t cols) {
    return static_cast<size_t>((rows + kLanes - 1) / kLanes) * static_cast<size_t>(cols / BlockQ8K::kElems) *
           sizeof(RepackedQ4K);
}

size_t q6_k_repacked_bytes(int64_t rows, int64_t cols) {
    return static_cast<size_t>((rows + kLanes - 1) / kLanes) * static_cast<size_t>(cols / BlockQ8K::kElems) *
           sizeof(RepackedQ6K);
}

size_t q8_k_with_sums_of_32_row_bytes(int64_t cols) {
    return q8_k_row_bytes(cols) + static_cast<size_t>(cols / BlockQ8K::kElems) * 8 * sizeof(int16_t);
}

void quantize_row_to_q8_k_with_sums_of_32(const float* x, int64_t cols, uint8_t* out) {
    quantize_row_to_q8_k(x, cols, out);
    const int64_t blocks = cols / BlockQ8K::kElems;
    const auto* q = reinterpret_cast<const BlockQ8K*>(out);
    auto* sums = reinterpret_cast<int16_t*>(out + blocks * sizeof(BlockQ8K));
    for (int64_t b = 0; b < blocks; ++b)
        for (int j = 0; j < 8; ++j)
            sums[8 * b + j] = static_cast<int16_t>(q[b].bsums[2 * j] + q[b].bsums[2 * j + 1]);
}

// Rows of groups [group_begin, group_end) (16 rows each; the last group's missing rows repeat
// its last row).
HEARTH_VNNI void repack_q4_k(const WeightMatrix& w, int64_t group_begin, int64_t group_end, uint8_t* out) {
    const int64_t blocks = w.cols / BlockQ8K::kElems;
    const __m512i low4 = _mm512_set1_epi8(0x0f), high4 = _mm512_set1_epi8(static_cast<char>(0xf0));
    for (int64_t g = group_begin; g < group_end; ++g) {
        const int64_t first = g * kLanes;
        const int rows = static_cast<int>(std::min<int64_t>(kLanes, w.rows - first));
        const GroupRows group_rows(rows, w.row_bytes);
        const __m512i row_offsets = group_rows.vector();
        auto* repacked = reinterpret_cast<RepackedQ4K*>(out) + g * blocks;
        for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* base = w.data + first * w.row_bytes + b * sizeof(quant::BlockQ4K);
            RepackedQ4K& block = repacked[b];
            // Dword k of qs chunk c: quads 16c + k (low nibbles, sub-block 2c) and 16c + 8 + k
            // (high nibbles, sub-block 2c + 1).
            for (int c = 0; c < 4; ++c) {
                for (int k = 0; k < 4; ++k) {
                    const size_t at = offsetof(quant::BlockQ4K, qs) + 32 * c + 4 * k;
                    const __m512i first_half = gather_dwords(base, row_offsets, at);
                    const __m512i second_half = gather_dwords(base, row_offsets, at + 16);
                    const __m512i low_sub_block =
                        _mm512_or_si512(_mm512_and_si512(first_half, low4),
                                        _mm512_slli_epi32(_mm512_and_si512(second_half, low4), 4));
                    const __m512i high_sub_block =
                        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(first_half, 4), low4),
                                        _mm512_and_si512(second_half, high4));
                    _mm512_store_si512(block.nibbles[4 * (2 * c) + k], low_sub_block);
                    _mm512_store_si512(block.nibbles[4 * (2 * c + 1) + k], high_sub_block);
                }
            }
            for (int r = 0; r < kLanes; ++r) {
                const auto& header =
                    *reinterpret_cast<const quant::ScaleMinHeader*>(base + group_rows.offsets[r]);
                block.d[r] = header.d;
                block.dmin[r] = header.dmin;
                for (int j = 0; j < 8; ++j) {
                    const quant::ScaleMin sm = quant::unpack_scale_min_k4(header.scales, j);
                    block.scales[j][r] = sm.scale;
                    block.min_pairs[j / 2][r][j % 2] = sm.min;
                }
            }
        }
    }
}

// Value 128h + 32k + l of a Q6_K block has its low 4 bits in ql[64h + 32(k % 2) + l] (the low
// nibble for k < 2) and its high 2 bits at bit 2k of qh[32h + l]: dword l/4 of those gives quad
// 32h + 8k + l/4. The 64 quads' 6-bit levels are gathered first, then packed.
HEARTH_VNNI void repack_q6_k(const WeightMatrix& w, int64_t group_begin, int64_t group_end, uint8_t* out) {
    const int64_t blocks = w.cols / BlockQ8K::kElems;
    const __m512i low4 = _mm512_set1_epi8(0x0f), low2 = _mm512_set1_epi8(0x03);
    for (int64_t g = group_begin; g < group_end; ++g) {
        const int64_t first = g * kLanes;
        const int rows = static_cast<int>(std::min<int64_t>(kLanes, w.rows - first));
        const GroupRows group_rows(rows, w.row_bytes);
        const __m512i row_offsets = group_rows.vector();
        auto* repacked = reinterpret_cast<RepackedQ6K*>(out) + g * blocks;
        for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* base = w.data + first * w.row_bytes + b * sizeof(quant::BlockQ6K);
            __m512i levels[64];
            for (int h = 0; h < 2; ++h) {
                for (int l = 0; l < 32; l += 4) {
                    const __m512i high =
                        gather_dwords(base, row_offsets, offsetof(quant::BlockQ6K, qh) + 32 * h + l);
                    for (int m = 0; m < 2; ++m) {
                        const __m512i low = gather_dwords(
                            base, row_offsets, offsetof(quant::BlockQ6K, ql) + 64 * h + 32 * m + l);
                        for (const int k : {m, m + 2}) {
                            const __m512i low_bits =
                                _mm512_and_si512(k < 2 ? low : _mm512_srli_epi32(low, 4), low4);
                            const __m512i high_bits =
                                _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(high, 2 * k), low2), 4);
                            levels[32 * h + 8 * k + l / 4] = _mm512_or_si512(low_bits, high_bits);
                        }
                    }
                }
            }
            RepackedQ6K& block = repacked[b];
            for (int j = 0; j < 16; ++j) {
                __m512i highs = _mm512_setzero_si512();
                for (int q = 0; q < 4; ++q) {
                    const __m512i two_bits = _mm512_and_si512(_mm512_srli_epi32(levels[4 * j + q], 4), low2);
                    highs = _mm512_or_si512(highs, _mm512_slli_epi32(two_bits, 2 * q));
                }
                _mm512_store_si512(block.sub_blocks[j].highs, highs);
                for (int k = 0; k < 2; ++k) {
                    const __m512i packed =
                        _mm512_or_si512(_mm512_and_si512(levels[4 * j + k], low4),
                                        _mm512_slli_epi32(_mm512_and_si512(levels[4 * j + 2 + k], low4), 4));
                    _mm512_store_si512(block.sub_blocks[j].nibbles[k], packed);
                }
            }
            for (int r = 0; r < kLanes; ++r) {
                const auto& row = *reinterpret_cast<const quant::BlockQ6K*>(base + group_rows.offsets[r]);
                block.d[r] = row.d;
                for (int p = 0; p < 8; ++p) {
                    block.scale_pairs[p][r][0] = row.scales[2 * p];
                    block.scale_pairs[p][r][1] = row.scales[2 * p + 1];
                }
            }
        }
    }
}

namespace {

// A level: its low 4 bits | its high 2 bits, already moved to bits 4-5 of `high` (other bits of
// `high` are dropped).
HEARTH_VNNI inline __m512i six_bit_level(__m512i low_bits, __m512i high) {
    return _mm512_ternarylogic_epi32(high, low_bits, _mm512_set1_epi8(0x30), 0xec);  // (high & 0x30) | low
}

// y[t * y_stride + r] for the 16 rows of `block` (those in `valid`) and kTokens tokens. Per block:
// sum_j scale_j * (dot of sub-block j's levels - 32 * bsum_j), the offset of 32 on the levels
// taken back through the Q8_K group sums, exact in int32, then one f32 step.
template <int kTokens>
HEARTH_VNNI void repacked_q6_k_tile(const RepackedQ6K* w, int64_t blocks, const uint8_t* prepared,
                                    size_t stride, float* y, int64_t y_stride, __mmask16 valid) {
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    const BlockQ8K* x[kTokens];
    __m512 acc[kTokens];
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
        x[t] = reinterpret_cast<const BlockQ8K*>(prepared + t * stride);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < blocks; ++b) {
        const RepackedQ6K& block = w[b];
        __m512i block_sum[kTokens];
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) block_sum[t] = _mm512_setzero_si512();
        // Sub-blocks in pairs, whose scales come as int16 pairs from one load: first the pair's
        // offset term, -32 * (scale_2p * bsum_2p + scale_2p+1 * bsum_2p+1), then each sub-block.
        for (int p = 0; p < 8; ++p) {
            const __m512i pairs = _mm512_cvtepi8_epi16(
                _mm256_load_si256(reinterpret_cast<const __m256i*>(block.scale_pairs[p])));
            const __m512i offset_pairs =
                _mm512_sub_epi16(_mm512_setzero_si512(), _mm512_slli_epi16(pairs, 5));
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t) {
                int32_t bsum_pair;
                std::memcpy(&bsum_pair, x[t][b].bsums + 2 * p, sizeof(bsum_pair));
                block_sum[t] = _mm512_dpwssd_epi32(block_sum[t], offset_pairs, _mm512_set1_epi32(bsum_pair));
            }
            const __m512i scales[2] = {_mm512_srai_epi32(_mm512_slli_epi32(pairs, 16), 16),
                                       _mm512_srai_epi32(pairs, 16)};
            for (int half = 0; half < 2; ++half) {
                const int j = 2 * p + half;
                const __m512i high = _mm512_load_si512(block.sub_blocks[j].highs);
                __m512i quads[4];
#pragma GCC unroll 2
                for (int k = 0; k < 2; ++k) {
                    const __m512i packed = _mm512_load_si512(block.sub_blocks[j].nibbles[k]);
                    // Quad k's high bits sit at 2k, quad 2 + k's at 4 + 2k.
                    quads[k] =
                        six_bit_level(_mm512_and_si512(packed, low4), _mm512_slli_epi32(high, 4 - 2 * k));
                    quads[2 + k] = six_bit_level(_mm512_and_si512(_mm512_srli_epi32(packed, 4), low4),
                                                 k == 0 ? high : _mm512_srli_epi32(high, 2));
                }
                __m512i sub_sum[kTokens];
#pragma GCC unroll 8
                for (int t = 0; t < kTokens; ++t) sub_sum[t] = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int q = 0; q < 4; ++q) {
#pragma GCC unroll 8
                    for (int t = 0; t < kTokens; ++t) {
                        int32_t quad;
                        std::memcpy(&quad, x[t][b].qs + 16 * j + 4 * q, sizeof(quad));
                        sub_sum[t] = _mm512_dpbusd_epi32(sub_sum[t], quads[q], _mm512_set1_epi32(quad));
                    }
                }
#pragma GCC unroll 8
                for (int t = 0; t < kTokens; ++t)
                    block_sum[t] =
                        _mm512_add_epi32(block_sum[t], _mm512_mullo_epi32(sub_sum[t], scales[half]));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block.d)));
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) {
            const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(x[t][b].d));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block_sum[t]), scale, acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) _mm512_mask_storeu_ps(y + t * y_stride, valid, acc[t]);
}

// y[t * y_stride + r] for the 16 rows of `block` (those in `valid`) and kTokens tokens.
template <int kTokens>
HEARTH_VNNI void repacked_q4_k_tile(const RepackedQ4K* w, int64_t blocks, const uint8_t* prepared,
                                    size_t stride, float* y, int64_t y_stride, __mmask16 valid) {
    const __m512i low4 = _mm512_set1_epi8(0x0f), high4 = _mm512_set1_epi8(static_cast<char>(0xf0));
    const BlockQ8K* x[kTokens];
    const int16_t* sums[kTokens];
    __m512 acc[kTokens];
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
        x[t] = reinterpret_cast<const BlockQ8K*>(prepared + t * stride);
        sums[t] = sums_of_32(prepared + t * stride, blocks);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < blocks; ++b) {
        const RepackedQ4K& block = w[b];
        __m512i block_sum[kTokens];
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) block_sum[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; ++j) {
            __m512i low_sum[kTokens], high_sum[kTokens];
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t) low_sum[t] = high_sum[t] = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                const __m512i packed = _mm512_load_si512(block.nibbles[4 * j + k]);
                const __m512i low = _mm512_and_si512(packed, low4);
                const __m512i high = _mm512_and_si512(packed, high4);  // 16 x the level
#pragma GCC unroll 8
                for (int t = 0; t < kTokens; ++t) {
                    int32_t low_quad, high_quad;
                    std::memcpy(&low_quad, x[t][b].qs + 32 * j + 4 * k, sizeof(low_quad));
                    std::memcpy(&high_quad, x[t][b].qs + 32 * j + 16 + 4 * k, sizeof(high_quad));
                    low_sum[t] = _mm512_dpbusd_epi32(low_sum[t], low, _mm512_set1_epi32(low_quad));
                    high_sum[t] = _mm512_dpbusd_epi32(high_sum[t], high, _mm512_set1_epi32(high_quad));
                }
            }
            const __m512i scale =
                _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(block.scales[j])));
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t) {
                const __m512i sub_sum = _mm512_add_epi32(low_sum[t], _mm512_srai_epi32(high_sum[t], 4));
                block_sum[t] = _mm512_add_epi32(block_sum[t], _mm512_mullo_epi32(sub_sum, scale));
            }
        }
        // The min term, sum_j min_j * (sum of quants 32j .. 32j + 31), in the low-sum registers.
        __m512i min_sum[kTokens];
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) min_sum[t] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {
            const __m512i mins =
                _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(block.min_pairs[p])));
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t) {
                int32_t sum_pair;
                std::memcpy(&sum_pair, sums[t] + 8 * b + 2 * p, sizeof(sum_pair));
                min_sum[t] = _mm512_dpwssd_epi32(min_sum[t], mins, _mm512_set1_epi32(sum_pair));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block.d)));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block.dmin)));
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) {
            const __m512 x_scale = _mm512_set1_ps(x[t][b].d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block_sum[t]), _mm512_mul_ps(d, x_scale), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(min_sum[t]), _mm512_mul_ps(dmin, x_scale), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) _mm512_mask_storeu_ps(y + t * y_stride, valid, acc[t]);
}

// Every 16 rows of [row_begin, row_end) in tiles of tokens: Tile::of<kTokens> on Repacked blocks.
template <class Repacked, class Tile>
void repacked_rows(const WeightMatrix& w, const uint8_t* prepared, size_t stride, int64_t tokens,
                   int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    const int64_t blocks = w.cols / BlockQ8K::kElems;
    const auto* groups = reinterpret_cast<const Repacked*>(w.data);
    for_each_row_group(row_begin, row_end, [&](int64_t first, int rows) {
        const Repacked* group = groups + (first / kLanes) * blocks;
        for_each_token_tile<kTileTokens, 2>(tokens, [&]<int kTokens>(int64_t t) {
            Tile::template of<kTokens>(group, blocks, prepared + t * stride, stride, y + t * y_stride + first,
                                       y_stride, real_rows(rows));
        });
    });
}

struct Q4KTile {
    template <int kTokens>
    static void of(const RepackedQ4K* w, int64_t blocks, const uint8_t* prepared, size_t stride, float* y,
                   int64_t y_stride, __mmask16 valid) {
        repacked_q4_k_tile<kTokens>(w, blocks, prepared, stride, y, y_stride, valid);
    }
};

struct Q6KTile {
    template <int kTokens>
    static void of(const RepackedQ6K* w, int64_t blocks, const uint8_t* prepared, size_t stride, float* y,
                   int64_t y_stride, __mmask16 valid) {
        repacked_q6_k_tile<kTokens>(w, blocks, prepared, stride, y, y_stride, valid);
    }
};

}  // namespace

const MatmulKernel kRepackedQ4KKernel{q8_k_with_sums_of_32_row_bytes, quantize_row_to_q8_k_with_sums_of_32,
                                      repacked_rows<RepackedQ4K, Q4KTile>};
const MatmulKernel kRepackedQ6KKernel{q8_k_row_bytes, quantize_row_to_q8_k,
                                      repacked_rows<RepackedQ6K, Q6KTile>};

}  // namespace hearth::cpu::detail::k_quants
