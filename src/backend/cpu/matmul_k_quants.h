// Inside matmul: what the K-quant kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS: super-blocks of
// 256 values) of every ISA share: the Q8_K preparation of the activations, the per-ISA finders
// that matmul_k_quants.cpp picks from, and the scalar unpacking of packed scales that the
// reference and the SIMD kernels must agree on. Only matmul_k_quants*.cpp include it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_kernels.h"
#include "backend/cpu/matmul_tiles.h"
#include "quant/iq4_xs.h"
#include "quant/q2_k.h"
#include "quant/q3_k.h"
#include "quant/q4_k.h"
#include "quant/q5_k.h"
#include "quant/q6_k.h"
#include "quant/q8_k.h"

namespace hearth::cpu::detail::k_quants {

size_t q8_k_row_bytes(int64_t cols);
// quant::quantize_row_q8_k's bytes (llama.cpp's Q8_K), with AVX2 where the CPU has it.
void quantize_row_to_q8_k(const float* x, int64_t cols, uint8_t* out);
// The same bytes as the reference for finite inputs, eight values at a time.
void quantize_row_to_q8_k_avx2(const float* x, int64_t cols, uint8_t* out);

// Every K-quant kernel unpacks a weight block once for a tile of one weight row by kTileTokens
// tokens: full_tile computes kTileTokens tokens, one_token a single one (tail tokens). Both must
// give a token the same bits.
template <int kTileTokens, TileDotFn full_tile, TileDotFn one_token>
struct RowTiles {
    static constexpr int kRows = 1;
    static constexpr int kTokens = kTileTokens;
    template <int kRowsOfTile, int kTokensOfTile>
    static constexpr TileDotFn dot = kTokensOfTile == kTileTokens ? full_tile : one_token;
};

// A slab of rows this size stays in L2 (1 MiB on Zen 4, 256 KiB and up elsewhere).
inline constexpr size_t kSlabBytes = 192 * 1024;

template <int kTileTokens, TileDotFn full_tile, TileDotFn one_token>
void rows(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens, int64_t row_begin,
          int64_t row_end, float* y, int64_t y_stride) {
    for_each_tile<RowTiles<kTileTokens, full_tile, one_token>>(w, prepared, prepared_stride, tokens, row_begin,
                                                               row_end, y, y_stride, kSlabBytes);
}

template <int kTileTokens, TileDotFn full_tile, TileDotFn one_token>
inline constexpr MatmulKernel kRowTileKernel{q8_k_row_bytes, quantize_row_to_q8_k,
                                             rows<kTileTokens, full_tile, one_token>};

// For formats whose mins cover 32 values (Q4_K, Q5_K), the min term of a block,
//   dmin * x.d * sum_j min_j * (bsum_2j + bsum_2j+1),
// is a dot of two 8-float vectors: dmin * min_j from the weight block (once per block) and
// x.d * (bsum_2j + bsum_2j+1) from the activations (once per token). The SIMD kernels of these
// formats prepare each activation row as its Q8_K blocks followed by those 8 floats per block,
// and spend one 8-lane FMA per block and token on the min term instead of an integer dot, two
// conversions and two multiplies.
size_t q8_k_with_min_sums_row_bytes(int64_t cols);
void quantize_row_to_q8_k_with_min_sums(const float* x, int64_t cols, uint8_t* out);
// The 8 floats of block 0 of a row prepared so; block b's follow at + 8 * b.
inline const float* min_sums_of(const uint8_t* prepared_row, int64_t blocks) {
    return reinterpret_cast<const float*>(prepared_row + blocks * sizeof(quant::BlockQ8K));
}

template <int kTileTokens, TileDotFn full_tile, TileDotFn one_token>
inline constexpr MatmulKernel kMinSumsTileKernel{q8_k_with_min_sums_row_bytes, quantize_row_to_q8_k_with_min_sums,
                                                 rows<kTileTokens, full_tile, one_token>};

// AVX-512 VNNI, two tokens or more, weights in the file's layout: 16 weight rows in the lanes of
// a vector (matmul_k_quants_lanes.cpp). MatmulKernel::rows without the one-token case, on
// activations with min sums.
void q4_k_lane_rows(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                    int64_t row_begin, int64_t row_end, float* y, int64_t y_stride);
void q5_k_lane_rows(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                    int64_t row_begin, int64_t row_end, float* y, int64_t y_stride);

// Q4_K repacked at load time (AVX-512 VNNI; matmul_k_quants_repacked.cpp): bytes of the repacked
// form, the repack of 16-row groups [group_begin, group_end), and the kernel on it, whose
// activation rows are Q8_K blocks followed by 8 int16 sums of 32 quants per block.
size_t q4_k_repacked_bytes(int64_t rows, int64_t cols);
void repack_q4_k(const WeightMatrix& w, int64_t group_begin, int64_t group_end, uint8_t* out);
size_t q8_k_with_sums_of_32_row_bytes(int64_t cols);
void quantize_row_to_q8_k_with_sums_of_32(const float* x, int64_t cols, uint8_t* out);
extern const MatmulKernel kRepackedQ4KKernel;
// The same for Q6_K, on plain Q8_K activation rows.
size_t q6_k_repacked_bytes(int64_t rows, int64_t cols);
void repack_q6_k(const WeightMatrix& w, int64_t group_begin, int64_t group_end, uint8_t* out);
extern const MatmulKernel kRepackedQ6KKernel;

// Kernels written for exactly that ISA; nullptr for a type without one.
const MatmulKernel* find_scalar_kernel(quant::Type type);
const MatmulKernel* find_avx2_kernel(quant::Type type);
const MatmulKernel* find_avx512_kernel(quant::Type type, bool vnni);

// What the SIMD kernels know of each format besides how to unpack it (each ISA file derives its
// unpacking struct from these): whether its sub-blocks have mins (subtracted through the Q8_K
// group sums), an offset on the levels (folded in as a bias on those sums), signed levels.
struct Q4KFormat {
    using Block = quant::BlockQ4K;
    static constexpr bool kHasMins = true, kHasBias = false, kSigned = false;
};
struct Q5KFormat {
    using Block = quant::BlockQ5K;
    static constexpr bool kHasMins = true, kHasBias = false, kSigned = false;
};
struct Q6KFormat {
    using Block = quant::BlockQ6K;
    static constexpr bool kHasMins = false, kHasBias = true, kSigned = false;
};
struct Q3KFormat {
    using Block = quant::BlockQ3K;
    static constexpr bool kHasMins = false, kHasBias = true, kSigned = false;
};
struct Q2KFormat {
    using Block = quant::BlockQ2K;
    static constexpr bool kHasMins = true, kHasBias = false, kSigned = false;
};
struct IQ4XSFormat {
    using Block = quant::BlockIQ4XS;
    static constexpr bool kHasMins = false, kHasBias = false, kSigned = true;
};

// Q3_K scale j is 6 bits stored as scale + 32: low 4 bits in nibble j/8 of byte j % 8, high
// 2 bits at bit 2*(j/4) of byte 8 + j % 4.
inline int q3_k_scale(const uint8_t packed[12], int j) {
    const int low = (packed[j % 8] >> (4 * (j / 8))) & 0x0f;
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

// The 16 Q3_K scales (stored + 32, as q3_k_scale reads them) four at a time: word i holds the
// bytes of scales 4i .. 4i + 3. Returned in registers: four 4-byte stores read back as 16 bytes
// would stall store forwarding.
inline std::array<uint32_t, 4> q3_k_stored_scale_words(const uint8_t packed[12]) {
    uint32_t words[3];
    std::memcpy(words, packed, sizeof(words));
    constexpr uint32_t kLow4 = 0x0f0f0f0f, kBits45 = 0x30303030;
    return {(words[0] & kLow4) | ((words[2] << 4) & kBits45), (words[1] & kLow4) | ((words[2] << 2) & kBits45),
            ((words[0] >> 4) & kLow4) | (words[2] & kBits45), ((words[1] >> 4) & kLow4) | ((words[2] >> 2) & kBits45)};
}

// IQ4_XS scale j: 6 bits stored + 32, low 4 bits in nibble j % 2 of scales_l[j / 2], high 2 bits
// at bit 2j of scales_h.
inline int iq4_xs_scale(const quant::BlockIQ4XS& block, int j) {
    const int low = (block.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
    const int high = (block.scales_h >> (2 * j)) & 3;
    return (low | (high << 4)) - 32;
}

// The 8 IQ4_XS scales as signed bytes, scale j in byte j.
inline uint64_t iq4_xs_scale_bytes(const quant::BlockIQ4XS& block) {
    uint8_t scale_bytes[8];
    for (int j = 0; j < 8; ++j) scale_bytes[j] = static_cast<uint8_t>(iq4_xs_scale(block, j));
    uint64_t packed;
    std::memcpy(&packed, scale_bytes, sizeof(packed));
    return packed;
}

}  // namespace hearth::cpu::detail::k_quants
