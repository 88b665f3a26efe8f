// Q4_K and Q6_K matrix products for batched decoding on f16 tensor cores: the weights are
// dequantized to f16 in registers, their scales (and Q4_K's mins) applied there, and the mma adds
// whole steps of 256 (Q4_K) or 128 (Q6_K) values into f32 accumulators. The int8 kernel
// (matmul_mma.cu) scales each 32-value dot of every (row, token) after its mma: at 64 tokens ten
// instructions per mma, and it ran at 10-20 % of the read bandwidth, bound by issuing them (Nsight Compute, docs/performance.md). Here a weight is
// dequantized once per launch and serves every token: the work per token is the mma's alone.
//
// The tokens are the mma's rows (m16, A from shared memory by ldmatrix) and the weight rows its
// columns (n8, B in registers). A block takes 128 weight rows: eight warps of 16 rows (two n8
// tiles), or from 33 tokens four warps of 32, whose A fragments each serve four mmas instead of
// two (shared memory's bandwidth bounds the many-token kernel). A warp multiplies its rows by
// every token tile, one step (a Q4_K super-block, half a Q6_K one) at a time. The block copies each
// step's weights and activations into shared memory with cp.async, steps ahead, so that no warp
// waits on global memory between steps. On Hopper the blocks of a cluster split the rows' length
// and add their sums through distributed shared memory (mma_blocks.cuh), as the int8 kernel does.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mma_blocks.cuh"
#include "backend/cuda/warp.cuh"

namespace hearth::cuda {
namespace {

constexpr int kTokensPerTile = 16;  // the mma's m
constexpr int kMaxTokenTiles = 4;   // 64 tokens a launch
constexpr int kRowsPerTile = 8;     // the mma's n
constexpr int kRowsPerBlock = 128;
constexpr int kPartialPad = 4;  // the partial sums' rows, [token][row]

// A token's values of one step in shared memory, padded by 16 bytes so that the eight 16-byte rows
// of each ldmatrix matrix fall in distinct banks.
constexpr int token_row_bytes(int values_per_step) { return 2 * values_per_step + 16; }

template <int kTilesPerWarp>
struct Warps {
    static constexpr int kCount = kRowsPerBlock / (kTilesPerWarp * kRowsPerTile);
    static constexpr int kThreads = kCount * kWarp;
};

// Two n8 tiles a warp up to 32 tokens, four from 33.
template <int kTokenTiles>
constexpr int kTilesPerWarpFor = kTokenTiles <= 2 ? 2 : 4;

template <typename Format, int kTokenTiles>
struct StageLayout {
    static constexpr int kTokenRowBytes = token_row_bytes(Format::kValuesPerStep);
    static constexpr int kWeightBytes = kRowsPerBlock * Format::kStageRowBytes;
    static constexpr int kActivationBytes = kTokenTiles * kTokensPerTile * kTokenRowBytes;
    static constexpr int kBytes = kWeightBytes + kActivationBytes;
};

template <typename Format, int kTokenTiles>
constexpr size_t shared_bytes() {
    const size_t stages = size_t{Format::template kStages<kTokenTiles>} * StageLayout<Format, kTokenTiles>::kBytes;
    const size_t sums = size_t{kTokenTiles} * kTokensPerTile * (kRowsPerBlock + kPartialPad) * sizeof(float);
    return std::max(stages, sums);
}

// A lane's place in the fragments of mma.m16n8k16 with .f16 (PTX ISA, "Matrix Fragments for
// mma.m16n8k16"): A (tokens x k) rows group and group + 8 at k = 2 quad, 2 quad + 1 and 2 quad + 8,
// 2 quad + 9; B (k x weight rows) column group at the same k (registers b0: 2 quad, 2 quad + 1;
// b1: 2 quad + 8, 2 quad + 9); the accumulators rows group (0, 1) and group + 8 (2, 3) by columns
// 2 quad and 2 quad + 1. k runs in the values' own order.
struct Lane {
    int group;
    int quad;
};

__device__ __forceinline__ void mma_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The A fragment of 16 tokens by one k16 chunk: lanes 8m .. 8m + 7 give the rows of matrix m
// (tokens 0-7 then 8-15, k 0-7, then the same at k 8-15), and the four registers arrive in the
// mma's order.
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
                 : "r"(static_cast<unsigned>(__cvta_generic_to_shared(row))));
}

__device__ __forceinline__ uint32_t as_bits(__half2 h) {
    return *reinterpret_cast<uint32_t*>(&h);
}

__device__ __forceinline__ __half2 as_half2(uint32_t bits) {
    return *reinterpret_cast<__half2*>(&bits);
}

// (x & mask) | bits in one instruction: written as two, the compiler emits two (each takes one
// immediate); the PTX form lets ptxas keep one constant in a register.
template <uint32_t kMask, uint32_t kBits>
__device__ __forceinline__ uint32_t masked_or(uint32_t x) {
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(x), "n"(kMask), "n"(kBits));
    return r;
}

// The eight 6-bit scales and mins of a row's step, a byte each: sub-blocks 0-3 and 4-7.
struct PackedScales {
    uint32_t scales_low, scales_high, mins_low, mins_high;
};

// From the block's bytes 4-15: bytes 4-7 hold scales 0-3 and the top bits of scales 4-7, bytes
// 8-11 mins 0-3 and the top bits of mins 4-7, bytes 12-15 the low four bits of scales (low
// nibble) and mins (high nibble) 4-7.
__device__ __forceinline__ PackedScales unpack_scales(uint32_t bytes_4_7, uint32_t bytes_8_11, uint32_t bytes_12_15) {
    return {bytes_4_7 & 0x3f3f3f3fu, (bytes_12_15 & 0x0f0f0f0fu) | ((bytes_4_7 >> 2) & 0x30303030u),
            bytes_8_11 & 0x3f3f3f3fu, ((bytes_12_15 >> 4) & 0x0f0f0f0fu) | ((bytes_8_11 >> 2) & 0x30303030u)};
}

// The sub-block's scale d * scale and negated min -dmin * min, each as an f16 pair: the 6-bit
// integers as f16 1024 + n, exactly n after a subtraction, times (d, -dmin) with one rounding.
__device__ __forceinline__ void sub_block_scales(const PackedScales& packed, uint32_t d_dmin, int sub_block,
                                                 __half2& scale, __half2& minus_min) {
    const int k = sub_block % 4;
    const uint32_t scales = sub_block < 4 ? packed.scales_low : packed.scales_high;
    const uint32_t mins = sub_block < 4 ? packed.mins_low : packed.mins_high;
    const uint32_t pair = __byte_perm(scales, mins, k | ((4 + k) << 8));  // scale in byte 0, min in byte 2
    const __half2 integers = __hsub2(as_half2(masked_or<0x00ff00ffu, 0x64006400u>(pair)), __float2half2_rn(1024.0f));
    const __half2 both = __hmul2(integers, as_half2(d_dmin ^ 0x80000000u));  // (d scale, -dmin min)
    scale = __low2half2(both);
    minus_min = __high2half2(both);
}

// Two levels of a sub-block (low or high nibbles of the bytes in bits 0-7 and 16-23) dequantized:
// level * scale - min, in f16. f16 1024 + n (1024 + 16 n for a high nibble) is the bits
// 0x6400 | n: the level without a conversion, then exact arithmetic to the level, then one
// rounding of level * scale - min.
template <bool kHigh>
__device__ __forceinline__ uint32_t dequantize_pair(uint32_t bytes, __half2 scale, __half2 minus_min) {
    const __half2 biased = as_half2(masked_or<kHigh ? 0x00f000f0u : 0x000f000fu, 0x64006400u>(bytes));
    const __half2 level = kHigh ? __hfma2(biased, __float2half2_rn(0.0625f), __float2half2_rn(-64.0f))
                                : __hsub2(biased, __float2half2_rn(1024.0f));
    return as_bits(__hfma2(level, scale, minus_min));
}

// (x & kMask) | (y & ~kMask): the bits of kMask from x, the others from y, in one instruction.
template <uint32_t kMask>
__device__ __forceinline__ uint32_t merge_bits(uint32_t x, uint32_t y) {
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xe4;" : "=r"(r) : "r"(x), "r"(y), "n"(kMask));
    return r;
}

template <int kTokenTiles, int kTilesPerWarp>
using Sums = float[kTokenTiles][kTilesPerWarp][4];

// Where lane (group, quad) reads a row's bytes for the B fragments: of each 16 bytes that hold 16
// values in order, the 4-byte words at 4 (quad / 2) and 8 + 4 (quad / 2), of which it keeps bytes
// 2 (quad % 2) and + 1 (values 2 quad, 2 quad + 1: b0; 2 quad + 8, + 9: b1), moved to bits 0-7 and
// 16-23 by __byte_perm with this selector.
__device__ __forceinline__ uint32_t kept_bytes_selector(Lane lane) { return lane.quad % 2 == 0 ? 0x4140 : 0x4342; }

__device__ __forceinline__ uint32_t load_word(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

// The activations' row this lane gives ldmatrix: token lane_id % 16 of a tile, at value
// 8 (lane_id / 16) of a 16-value chunk.
template <int kValuesPerStep>
__device__ __forceinline__ const uint8_t* ldmatrix_row(const uint8_t* activations, int lane_id) {
    return activations + (lane_id % 16) * token_row_bytes(kValuesPerStep) + 16 * (lane_id / 16);
}

// The warp's mmas for two 16-value chunks of a step, `first_chunk` and the next, whose B fragments
// b[tile][0, 1] and b[tile][2, 3] hold: every token tile's A fragment by ldmatrix, then one mma
// per (token tile, row tile).
template <int kTokenTiles, int kTilesPerWarp, int kTokenRowBytes>
__device__ __forceinline__ void multiply_chunk_pair(const uint8_t* a_row, int first_chunk,
                                                    const uint32_t (&b)[kTilesPerWarp][4],
                                                    Sums<kTokenTiles, kTilesPerWarp>& sums) {
#pragma unroll
    for (int c = 0; c < 2; ++c) {
#pragma unroll
        for (int i = 0; i < kTokenTiles; ++i) {
            uint32_t a[4];
            load_a(a, a_row + i * kTokensPerTile * kTokenRowBytes + 32 * (first_chunk + c));
#pragma unroll
            for (int j = 0; j < kTilesPerWarp; ++j) mma_f16(sums[i][j], a, b[j][2 * c], b[j][2 * c + 1]);
        }
    }
}

// Q4_K: a step is one super-block, its 144 bytes as in the file (d, dmin, 12 bytes of scales and
// mins, 128 of nibbles), copied as 9 pieces of 16 bytes. In shared memory rows keep their 144
// bytes: the 4-byte reads of eight rows then fall in distinct banks.
struct Q4KSteps {
    static constexpr int kValuesPerStep = 256;
    static constexpr int kStageRowBytes = 144;
    static constexpr int kPieces = 9;
    static constexpr int kPieceSlots = 16;  // threads that copy a row's pieces
    // Steps in shared memory: as many as let two blocks share an SM (one token tile: four steps of
    // 26 KiB; 64 tokens: two of 50 KiB).
    template <int kTokenTiles>
    static constexpr int kStages = kTokenTiles == 1 ? 4 : (kTokenTiles == 2 ? 3 : 2);

    __device__ static const uint8_t* piece_source(const uint8_t* row, size_t /*scales_offset*/, int64_t step,
                                                  int piece) {
        return row + step * 144 + 16 * piece;
    }

    // One step: the warp's rows times every token tile over 256 values, a 32-byte chunk of nibbles
    // (sub-blocks 2p and 2p + 1, the low and high nibbles) at a time: lane quad's words at
    // 4 (quad / 2), + 8, + 16, + 24 of a chunk hold its values of each 16-value half of a sub-block.
    template <int kTokenTiles, int kTilesPerWarp>
    __device__ static void multiply(const uint8_t* weights, const uint8_t* activations, int64_t /*step*/, int warp,
                                    Lane lane, int lane_id, Sums<kTokenTiles, kTilesPerWarp>& sums) {
        constexpr int kTokenRowBytes = token_row_bytes(kValuesPerStep);
        const uint8_t* a_row = ldmatrix_row<kValuesPerStep>(activations, lane_id);
        const uint32_t keep_bytes = kept_bytes_selector(lane);
        const uint8_t* rows[kTilesPerWarp];
        PackedScales packed[kTilesPerWarp];
        uint32_t d_dmin[kTilesPerWarp];
#pragma unroll
        for (int j = 0; j < kTilesPerWarp; ++j) {
            rows[j] = weights + (warp * kTilesPerWarp * kRowsPerTile + kRowsPerTile * j + lane.group) * kStageRowBytes;
            const uint4 header = *reinterpret_cast<const uint4*>(rows[j]);
            d_dmin[j] = header.x;
            packed[j] = unpack_scales(header.y, header.z, header.w);
        }
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            uint32_t pairs[kTilesPerWarp][4];
#pragma unroll
            for (int j = 0; j < kTilesPerWarp; ++j)
#pragma unroll
                for (int w = 0; w < 4; ++w)
                    pairs[j][w] = __byte_perm(load_word(rows[j] + 16 + 32 * p + 8 * w + 4 * (lane.quad / 2)), 0,
                                              keep_bytes);
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int sub_block = 2 * p + h;
                uint32_t b[kTilesPerWarp][4];  // [tile][chunk 0: b0, b1; chunk 1: b0, b1]
#pragma unroll
                for (int j = 0; j < kTilesPerWarp; ++j) {
                    __half2 scale, minus_min;
                    sub_block_scales(packed[j], d_dmin[j], sub_block, scale, minus_min);
#pragma unroll
                    for (int w = 0; w < 4; ++w)
                        b[j][w] = h == 0 ? dequantize_pair<false>(pairs[j][w], scale, minus_min)
                                         : dequantize_pair<true>(pairs[j][w], scale, minus_min);
                }
                multiply_chunk_pair<kTokenTiles, kTilesPerWarp, kTokenRowBytes>(a_row, 2 * sub_block, b, sums);
            }
        }
    }
};

// Q6_K (split: 208-byte bodies of ql[128], qh[64], scales[16], the fp16 d apart): a step is half a
// super-block, values 128 h .. 128 h + 127, whose 6-bit levels are the nibbles of ql[64 h ..
// 64 h + 63] (low nibbles of bytes 32 j + l: value 32 j + l; high: 32 (j + 2) + l) with bits 2 k,
// 2 k + 1 of qh[32 h + l] on top (k the value's 32-value group), minus 32, times d and the signed
// scale of its 16 values. Half steps keep a 64-token stage at 35 KiB, so that two blocks with
// three stages each share an SM (whole super-blocks took 59 KiB a stage). A row's step in shared
// memory: ql's 64 bytes, qh's 32, the 16 scales (both halves') and the 16 bytes of d's that hold
// this block's, 16 bytes of padding (144-byte rows: the reads of eight rows in distinct banks).
struct Q6KSteps {
    static constexpr int kValuesPerStep = 128;
    static constexpr int kStageRowBytes = 144;
    static constexpr int kPieces = 8;
    static constexpr int kPieceSlots = 8;
    static constexpr int kQh = 64, kScales = 96, kDs = 112;  // in a row's stage
    template <int kTokenTiles>
    static constexpr int kStages = kTokenTiles <= 2 ? 4 : 3;

    __device__ static const uint8_t* piece_source(const uint8_t* row, size_t scales_offset, int64_t step, int piece) {
        const int64_t block = step / 2;
        const int half = static_cast<int>(step % 2);
        if (piece == 7) return row + scales_offset + 16 * (block / 8);
        const uint8_t* body = row + block * 208;
        if (piece < 4) return body + 64 * half + 16 * piece;
        if (piece < 6) return body + 128 + 32 * half + 16 * (piece - 4);
        return body + 192;
    }

    // The scales of 16-value chunks 2 k, 2 k + 1 of the step, times d, as an f16 pair: the signed
    // bytes + 128 as f16 1024 + n, exactly the scale after a subtraction, then one rounding.
    __device__ static __half2 chunk_scales(uint32_t scale_bytes, int k, __half2 d) {
        const uint32_t biased = __byte_perm(scale_bytes ^ 0x80808080u, 0x64646464u, k % 2 == 0 ? 0x4140 : 0x4342);
        return __hmul2(__hsub2(as_half2(biased), __float2half2_rn(1152.0f)), d);
    }

    // Two levels of 32-value group k (bits 0-7 and 16-23 of `low_bits`: ql bytes; of `top_bits`: qh
    // bytes shifted left by 4 - 2 (k % 2), so that the group's two bits sit at 4-5 for the low
    // nibbles and 8-9 for the high) times the scale, in f16: 1024 + level + 32 as the bits 0x6400 |
    // level (16 level for the high nibble, with the top bits at 8-9), then exact arithmetic to the
    // signed level, then one rounding.
    template <bool kHigh>
    __device__ static uint32_t dequantize_pair(uint32_t low_bits, uint32_t top_bits, __half2 scale) {
        if constexpr (kHigh) {
            const uint32_t biased = merge_bits<0x00f000f0u>(low_bits, masked_or<0x03000300u, 0x64006400u>(top_bits));
            const __half2 level = __hfma2(as_half2(biased), __float2half2_rn(0.0625f), __float2half2_rn(-96.0f));
            return as_bits(__hmul2(level, scale));
        } else {
            const uint32_t biased = merge_bits<0x000f000fu>(low_bits, masked_or<0x00300030u, 0x64006400u>(top_bits));
            return as_bits(__hmul2(__hsub2(as_half2(biased), __float2half2_rn(1056.0f)), scale));
        }
    }

    // Half a super-block: for each 32-byte run j of ql, the low nibbles (group k = j) then the high
    // (k = j + 2), each two 16-value chunks with their own scales.
    template <int kTokenTiles, int kTilesPerWarp>
    __device__ static void multiply(const uint8_t* weights, const uint8_t* activations, int64_t step, int warp,
                                    Lane lane, int lane_id, Sums<kTokenTiles, kTilesPerWarp>& sums) {
        constexpr int kTokenRowBytes = token_row_bytes(kValuesPerStep);
        const uint8_t* a_row = ldmatrix_row<kValuesPerStep>(activations, lane_id);
        const uint32_t keep_bytes = kept_bytes_selector(lane);
        const int half = static_cast<int>(step % 2), d_at = 2 * static_cast<int>((step / 2) % 8);
        const int word = 4 * (lane.quad / 2);
        const uint8_t* rows[kTilesPerWarp];
        uint32_t scale_bytes[kTilesPerWarp][2];  // the step's scales 0-3 and 4-7
        __half2 d[kTilesPerWarp];
#pragma unroll
        for (int j = 0; j < kTilesPerWarp; ++j) {
            rows[j] = weights + (warp * kTilesPerWarp * kRowsPerTile + kRowsPerTile * j + lane.group) * kStageRowBytes;
            scale_bytes[j][0] = load_word(rows[j] + kScales + 8 * half);
            scale_bytes[j][1] = load_word(rows[j] + kScales + 8 * half + 4);
            d[j] = __half2half2(*reinterpret_cast<const __half*>(rows[j] + kDs + d_at));
        }
#pragma unroll
        for (int run = 0; run < 2; ++run) {
            uint32_t low_bits[kTilesPerWarp][4], top_bits[kTilesPerWarp][4];
#pragma unroll
            for (int j = 0; j < kTilesPerWarp; ++j)
#pragma unroll
                for (int w = 0; w < 4; ++w) {
                    low_bits[j][w] = __byte_perm(load_word(rows[j] + 32 * run + 8 * w + word), 0, keep_bytes);
                    top_bits[j][w] = __byte_perm(load_word(rows[j] + kQh + 8 * w + word), 0, keep_bytes)
                                     << (4 - 2 * run);
                }
#pragma unroll
            for (int high = 0; high < 2; ++high) {
                const int group = run + 2 * high;
                uint32_t b[kTilesPerWarp][4];  // [tile][chunk 0: b0, b1; chunk 1: b0, b1]
#pragma unroll
                for (int j = 0; j < kTilesPerWarp; ++j) {
                    const __half2 scales = chunk_scales(scale_bytes[j][group / 2], group, d[j]);
#pragma unroll
                    for (int w = 0; w < 4; ++w) {
                        const __half2 scale = w < 2 ? __low2half2(scales) : __high2half2(scales);
                        b[j][w] = high ? dequantize_pair<true>(low_bits[j][w], top_bits[j][w], scale)
                                       : dequantize_pair<false>(low_bits[j][w], top_bits[j][w], scale);
                    }
                }
                multiply_chunk_pair<kTokenTiles, kTilesPerWarp, kTokenRowBytes>(a_row, 2 * group, b, sums);
            }
        }
    }
};

// The block copies one step: Format::kPieces 16-byte pieces of each of its rows (rows past the
// matrix's last are not copied: their sums are never stored) and `tokens` rows of the step's f16
// activations, 16 bytes a copy. A thread copies piece tid % kPieceSlots of rows tid / kPieceSlots,
// + threads / kPieceSlots, ... (no piece past kPieces), then piece tid % p of tokens tid / p, + threads / p, ...
// (p the step's pieces of a token).
template <typename Format, int kThreads, int kTokenTiles>
struct StepCopier {
    static constexpr int kRowsAtOnce = kThreads / Format::kPieceSlots;
    static constexpr int kTokenPieces = Format::kValuesPerStep / 8;
    static constexpr int kTokensAtOnce = kThreads / kTokenPieces;
    static constexpr int kTokenRowBytes = token_row_bytes(Format::kValuesPerStep);
    const uint8_t* row_data;  // this thread's first row
    size_t scales_offset;
    int piece;
    int64_t rows_stride;  // bytes between this thread's rows
    int rows_left;        // of this thread's rows, how many exist
    int weight_offset;    // in the stage
    const __half* activations;
    int64_t tokens_stride;  // values between this thread's tokens
    int tokens_left;
    int activation_offset;

    __device__ StepCopier(const DeviceMatrix& w, const uint8_t* data, int64_t first_row, int64_t rows,
                          const __half* x, int tokens) {
        piece = threadIdx.x % Format::kPieceSlots;
        const int row = threadIdx.x / Format::kPieceSlots;
        row_data = data + (first_row + row) * w.row_stride;
        scales_offset = w.scales_offset;
        rows_stride = static_cast<int64_t>(kRowsAtOnce) * w.row_stride;
        const int64_t left = (rows - first_row - row + kRowsAtOnce - 1) / kRowsAtOnce;
        rows_left = piece < Format::kPieces
                        ? static_cast<int>(std::min<int64_t>(std::max<int64_t>(left, 0), kRowsPerBlock))
                        : 0;
        weight_offset = row * Format::kStageRowBytes + 16 * piece;
        const int token = threadIdx.x / kTokenPieces, token_piece = threadIdx.x % kTokenPieces;
        activations = x + token * w.cols + 8 * token_piece;
        tokens_stride = static_cast<int64_t>(kTokensAtOnce) * w.cols;
        tokens_left = std::max(0, (tokens - token + kTokensAtOnce - 1) / kTokensAtOnce);
        activation_offset = StageLayout<Format, kTokenTiles>::kWeightBytes + token * kTokenRowBytes + 16 * token_piece;
    }

    __device__ void copy_weights(uint8_t* stage, int64_t step) const {
        const uint8_t* from = Format::piece_source(row_data, scales_offset, step, piece);
        for (int i = 0; i < kRowsPerBlock / kRowsAtOnce && i < rows_left; ++i)
            copy_16_async(stage + weight_offset + i * kRowsAtOnce * Format::kStageRowBytes, from + i * rows_stride);
    }
    __device__ void copy_activations(uint8_t* stage, int64_t step) const {
        const __half* from = activations + step * Format::kValuesPerStep;
        for (int i = 0; i < tokens_left; ++i)
            copy_16_async(stage + activation_offset + i * kTokensAtOnce * kTokenRowBytes, from + i * tokens_stride);
    }
};

// Block b of a matrix multiplies its rows 128 (b / splits) .. + 127 over its share (b % splits)
// of the steps; the `splits` blocks of a group, one cluster, then add their sums and store them.
template <typename Format, int kTokenTiles>
__global__ void __launch_bounds__(Warps<kTilesPerWarpFor<kTokenTiles>>::kThreads, 2)
    matmul_f16_mma_kernel(MmaJobs jobs, const __half* __restrict__ x, int tokens, bool accumulate, int splits) {
    constexpr int kTilesPerWarp = kTilesPerWarpFor<kTokenTiles>;
    constexpr int kThreads = Warps<kTilesPerWarp>::kThreads;
    constexpr int kStages = Format::template kStages<kTokenTiles>;
    constexpr int kStageBytes = StageLayout<Format, kTokenTiles>::kBytes;
    constexpr int kWeightBytes = StageLayout<Format, kTokenTiles>::kWeightBytes;
    extern __shared__ __align__(16) uint8_t shared[];
    const DeviceMatrix& w = jobs.w[0];  // the type, cols and layout of every matrix
    const int matrix = matrix_of_block(jobs);
    const int block = static_cast<int>(blockIdx.x) - select(matrix, 0, jobs.first_block[1], jobs.first_block[2]);
    const int64_t row_group = block / splits;
    const int split = block % splits;
    const int warp = threadIdx.x / kWarp;
    const int lane_id = threadIdx.x % kWarp;
    const Lane lane{lane_id / 4, lane_id % 4};

    const int64_t steps = w.cols / Format::kValuesPerStep;
    const int64_t first_step = steps * split / splits, last_step = steps * (split + 1) / splits;
    const StepCopier<Format, kThreads, kTokenTiles> copier(
        w, select(matrix, jobs.w[0].data, jobs.w[1].data, jobs.w[2].data), row_group * kRowsPerBlock,
        select(matrix, jobs.w[0].rows, jobs.w[1].rows, jobs.w[2].rows), x, tokens);

    // The first stages' weights go out before the wait (no kernel writes weights), their
    // activations after it. Every stage commits one group, empty or not, so that the count of
    // groups in flight is the same at every step.
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s)
        if (first_step + s < last_step) copier.copy_weights(shared + s * kStageBytes, first_step + s);
    wait_for_previous_kernel();
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
        if (first_step + s < last_step) copier.copy_activations(shared + s * kStageBytes, first_step + s);
        commit_copies();
    }

    Sums<kTokenTiles, kTilesPerWarp> sums = {};
    int stage = 0;
    for (int64_t step = first_step; step < last_step; ++step) {
        wait_for_copies<kStages - 2>();  // this step's group
        __syncthreads();                 // every thread's copies, and every warp done with the last step
        const int64_t ahead = step + kStages - 1;
        if (ahead < last_step) {
            uint8_t* into = shared + (stage == 0 ? kStages - 1 : stage - 1) * kStageBytes;
            copier.copy_weights(into, ahead);
            copier.copy_activations(into, ahead);
        }
        commit_copies();
        const uint8_t* weights = shared + stage * kStageBytes;
        Format::template multiply<kTokenTiles, kTilesPerWarp>(weights, weights + kWeightBytes, step, warp, lane,
                                                              lane_id, sums);
        stage = stage == kStages - 1 ? 0 : stage + 1;
    }
    wait_for_copies<0>();
    __syncthreads();  // the stages' memory now holds the partial sums

    float* partial_sums = reinterpret_cast<float*>(shared);
    constexpr int kSumRow = kRowsPerBlock + kPartialPad;
#pragma unroll
    for (int i = 0; i < kTokenTiles; ++i)
#pragma unroll
        for (int j = 0; j < kTilesPerWarp; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int token = kTokensPerTile * i + lane.group + 8 * (e / 2);
                const int row = warp * kTilesPerWarp * kRowsPerTile + kRowsPerTile * j + 2 * lane.quad + e % 2;
                partial_sums[token * kSumRow + row] = sums[i][j][e];
            }
    sync_splits(splits);
    const int matrix_again = matrix_of_block(jobs);  // selected again rather than held through the steps
    store_group_sums<kThreads, kRowsPerBlock, kTokenTiles * kTokensPerTile>(
        partial_sums, kSumRow, row_group, split, splits, tokens,
        select(matrix_again, jobs.w[0].rows, jobs.w[1].rows, jobs.w[2].rows),
        select(matrix_again, jobs.out[0], jobs.out[1], jobs.out[2]), accumulate);
}

template <typename Format, int kTokenTiles>
void launch_kernel(MmaJobs jobs, const __half* x, int tokens, bool accumulate, Stream stream) {
    const auto kernel = matmul_f16_mma_kernel<Format, kTokenTiles>;
    constexpr int kThreads = Warps<kTilesPerWarpFor<kTokenTiles>>::kThreads;
    constexpr size_t kShared = shared_bytes<Format, kTokenTiles>();
    static const int blocks_per_sm = [&] {
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kShared));
        int blocks = 0;
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kThreads, kShared);
        return blocks;
    }();
    const int64_t steps = jobs.w[0].cols / Format::kValuesPerStep;
    const int splits = splits_for(row_groups(jobs, kRowsPerBlock), steps, blocks_per_sm);
    const int64_t blocks = assign_blocks(jobs, kRowsPerBlock, splits);
    launch_in_clusters(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), static_cast<unsigned>(splits),
                       kShared, stream, jobs, x, tokens, accumulate, splits);
}

// The kernel for exactly ceil(tokens / 16) token tiles.
template <typename Format, int kTokenTiles>
void launch_for_tiles(const MmaJobs& jobs, const __half* x, int tokens, bool accumulate, Stream stream) {
    if constexpr (kTokenTiles > 1) {
        if (tokens <= (kTokenTiles - 1) * kTokensPerTile)
            return launch_for_tiles<Format, kTokenTiles - 1>(jobs, x, tokens, accumulate, stream);
    }
    launch_kernel<Format, kTokenTiles>(jobs, x, tokens, accumulate, stream);
}

}  // namespace

bool has_f16_mma(uint32_t type) {
    return type == type_id::Q4_K || type == type_id::Q6_K;
}

void matmul_f16_mma(const MatvecProduct* products, int count, const uint16_t* values, int64_t tokens, bool accumulate,
                    Stream stream) {
    const DeviceMatrix& first_w = products[0].w;
    constexpr int kMaxTokens = kMaxTokenTiles * kTokensPerTile;
    for (int64_t first = 0; first < tokens; first += kMaxTokens) {
        const int n = static_cast<int>(std::min<int64_t>(kMaxTokens, tokens - first));
        const MmaJobs jobs = jobs_from(products, count, first);
        const auto* x = reinterpret_cast<const __half*>(values) + first * first_w.cols;
        if (first_w.type == type_id::Q4_K) launch_for_tiles<Q4KSteps, kMaxTokenTiles>(jobs, x, n, accumulate, stream);
        if (first_w.type == type_id::Q6_K) launch_for_tiles<Q6KSteps, kMaxTokenTiles>(jobs, x, n, accumulate, stream);
    }
}

}  // namespace hearth::cuda
