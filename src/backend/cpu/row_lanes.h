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

}  // namespace hearth::cpu::detail
