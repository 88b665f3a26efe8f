// What the kernels with 16 weight rows in the 16 lanes of a vector share (AVX-512 VNNI:
// matmul_k_quants_lanes.cpp, matmul_k_quants_repacked.cpp, matmul_block32_lanes.cpp): their
// target, and the gathers that read one field of 16 rows at once into a group.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#define HEARTH_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace hearth::cpu::detail {

inline constexpr int kLanes = 16;

// Where the 16 rows of a group start relative to its first, row_bytes apart. A group of fewer
// rows (the last of a matrix or of a row range) repeats its last row in the remaining lanes,
// whose results are never stored (see real_rows).
struct GroupRows {
    alignas(64) int32_t offsets[kLanes];

    GroupRows(int rows, size_t row_bytes) {
        for (int r = 0; r < kLanes; ++r)
            offsets[r] = static_cast<int32_t>(static_cast<size_t>(std::min(r, rows - 1)) * row_bytes);
    }
    HEARTH_VNNI __m512i vector() const { return _mm512_load_si512(offsets); }
};

// Lane r: the dword at base + row_offsets[r] + offset (one field of each row's block).
HEARTH_VNNI inline __m512i gather_dwords(const uint8_t* base, __m512i row_offsets, size_t offset) {
    return _mm512_i32gather_epi32(row_offsets, base + offset, 1);
}

// The lanes of a group of `rows` rows that hold real rows.
inline __mmask16 real_rows(int rows) {
    return static_cast<__mmask16>((1u << rows) - 1);
}

// For each group of 16 rows of [row_begin, row_end) (the last may be short): group(first, rows).
template <class Group>
void for_each_row_group(int64_t row_begin, int64_t row_end, Group&& group) {
    for (int64_t first = row_begin; first < row_end; first += kLanes)
        group(first, static_cast<int>(std::min<int64_t>(kLanes, row_end - first)));
}

// Tokens [0, tokens) in tiles of kFull, then of kPart, then one at a time:
// tile.template operator()<n>(t) for the n tokens from t. Every token sees the same operations
// whatever tile it is in, so the split does not change bits.
template <int kFull, int kPart, class Tile>
void for_each_token_tile(int64_t tokens, Tile&& tile) {
    int64_t t = 0;
    for (; t + kFull <= tokens; t += kFull) tile.template operator()<kFull>(t);
    for (; t + kPart <= tokens; t += kPart) tile.template operator()<kPart>(t);
    for (; t < tokens; ++t) tile.template operator()<1>(t);
}

}  // namespace hearth::cpu::detail
