// Matrix products for batched decoding (2 to 64 tokens; Q4_K from 33 tokens goes to matmul_f16_mma
// instead) on int8 tensor cores. The matrix-vector kernels read the weights once per 8 tokens;
// here they are read once per 64. The aim is the memory bandwidth; measured so far
// (docs/performance.md) it reaches 26-40 % of it at 16 tokens and 10-14 % at 64, bound by the
// per-token scaling work, not by the reads.
//
// Each warp multiplies 32 weight rows (two m16 tiles of mma.m16n8k32), or 16 from 33 tokens on,
// by up to 64 tokens (eight n8 tiles), one 32-value sub-block at a time: the weight quants go
// straight into the A fragments (mask and shift), the activations (quantize_activations' int8 blocks) into B, and
// each int32 dot is scaled by the weight's sub-block scale and the activation block's step into
// f32 accumulators. A thread block's four or eight warps take 128 rows; the block copies each step's
// activations (<= 64 tokens x 256 values) into shared memory while its warps load their weights
// into registers, so the mmas wait on one round trip per step; the tokens' scales for each
// sub-block are prepared once per block in shared memory, not per warp. Q4_K's mins go through the
// tensor cores too, once per step (subtract_min_term). On Hopper the blocks of a
// cluster split the rows' length between them and add up their sums through distributed shared
// memory: 4,096 rows are only 32 blocks of 128, too few to keep the memory busy. The split is
// chosen for whole waves of blocks (splits_for).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/activation_blocks.cuh"
#include "backend/cuda/block_decode.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mma_blocks.cuh"
#include "backend/cuda/warp.cuh"

namespace hearth::cuda {
namespace {

constexpr int kMaxTokensPerLaunch = 64;
constexpr int kTokensPerTile = 8;  // the mma's n
constexpr int kMaxTokenTiles = kMaxTokensPerLaunch / kTokensPerTile;
constexpr int kRowsPerTile = 16;   // the mma's m
constexpr int kRowsPerBlock = 128;
// How a block's warps share its rows: two m tiles per warp (four warps) let each B fragment and
// token scale read from shared memory serve two mmas; one per warp (eight warps, two blocks per
// SM under 128 registers) holds half the accumulators, so more warps hide the latencies. Two
// pay at few token tiles, one at many (H100, docs/performance.md).
template <int kTiles>
struct WarpTiles {
    static constexpr int kTilesPerWarp = kTiles;
    static constexpr int kWarpsPerBlock = kRowsPerBlock / (kTiles * kRowsPerTile);
    static constexpr int kThreads = kWarpsPerBlock * kWarp;
    // Two: no bound (a bound of one block let ptxas take 250 registers, not 170, and cost 20 %).
    static constexpr int kMinBlocksPerSm = kTiles == 1 ? 2 : 0;
    static_assert(kThreads % kRowsPerBlock == 0, "the final sums take whole rows of threads");
};
constexpr int kOneTilePerWarpFrom = 5;  // token tiles: 33 tokens
// A step is one Q4_K or Q6_K super-block, or eight Q8_0 blocks: what a lane loads at once.
constexpr int kValuesPerStep = 256;
constexpr int kSubBlocksPerStep = kValuesPerStep / kActivationBlock;

// Every mma starts from the f32 bits of 1.5 * 2^23 and adds the int32 dot: for |dot| < 2^22 the
// result's bits read as the float 1.5 * 2^23 + dot, exactly. One fma then gives dot * step,
// where a conversion would run at an eighth of the fma rate. The largest dot is Q8_0's,
// 32 * 127 * 127 < 2^19.
constexpr int kBiasBits = 0x4B400000;
constexpr float kBias = 12582912.0f;

// v * f for 0 <= |v| < 2^22 and an f whose product with kBias is exact (an f16 value): the
// weights' sub-block scales.
__device__ __forceinline__ float times_small_int(int v, float f) {
    return fmaf(__int_as_float(kBiasBits + v), f, -kBias * f);
}

// A token's activation step for one block, ready to scale a biased dot: the step with its two
// lowest mantissa bits cleared (a change under 2^-22 relative), so that kBias * step (1.5 times a
// power of two) is exact.
struct TokenStep {
    float step, minus_bias;
};

__device__ __forceinline__ TokenStep token_step(float block_step) {
    const float step = __int_as_float(__float_as_int(block_step) & ~3);
    return {step, -kBias * step};
}

// dot * step, from a biased mma result.
__device__ __forceinline__ float scaled_dot(int biased_dot, TokenStep s) {
    return fmaf(__int_as_float(biased_dot), s.step, s.minus_bias);
}

// A lane's place in the mma fragments (PTX ISA, "Matrix Fragments for mma.m16n8k32"): it holds
// A's rows `group` and `group` + 8 and B's column `group`, at k slots 4 quad .. 4 quad + 3 and
// 16 + 4 quad .. 16 + 4 quad + 3 of both; its accumulators are rows group and group + 8 by
// columns 2 quad and 2 quad + 1.
struct Lane {
    int group;  // lane / 4
    int quad;   // lane % 4
};

// A lane's k slots of one row or column: four int8 at 4 quad.. (.x) and four at 16 + 4 quad.. (.y).
// A sub-block's 32 values may sit in the k slots in any order that A and B share.
using Slots = uint2;

__device__ __forceinline__ void mma_k32(int (&d)[4], Slots row, Slots row_plus_8, Slots column) {
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(row.x), "r"(row_plus_8.x), "r"(row.y), "r"(row_plus_8.y), "r"(column.x), "r"(column.y));
}

// The same over k slots 4 quad .. 4 quad + 3 only (16 values): for Q6_K's scales per 16 values.
__device__ __forceinline__ void mma_k16(int (&d)[4], uint32_t row, uint32_t row_plus_8, uint32_t column) {
    asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(row), "r"(row_plus_8), "r"(column));
}

// d += A B over k = 8 in bf16 with f32 accumulators (PTX ISA, "Matrix Fragments for mma.m16n8k8",
// .bf16): a lane holds A's rows group and group + 8 at k = 2 quad and 2 quad + 1 (a bf16 pair per
// row, the lower k in the low half), B's column group at the same two k (one pair), and its
// accumulators where mma_k32 puts them (rows group and group + 8 by columns 2 quad, 2 quad + 1).
__device__ __forceinline__ void mma_bf16_k8(float (&d)[4], uint32_t row, uint32_t row_plus_8, uint32_t column) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(row), "r"(row_plus_8), "r"(column));
}

// Two floats' bf16 values, x in the low half: the upper halves of their bits (truncated, exact for
// a float with at most 8 significant bits).
__device__ __forceinline__ uint32_t bf16_pair(float x, float y) {
    return __byte_perm(__float_as_uint(x), __float_as_uint(y), 0x7632);
}

__device__ __forceinline__ float truncated_to_bf16(float x) {
    return __uint_as_float(__float_as_uint(x) & 0xffff0000u);
}

// Two floats as three bf16 pairs whose sum is exact: each part is the upper 8 significant bits of
// what the parts before left, and an f32 has 24 (each difference is exact: the truncation shares
// the sign and the leading bits). bf16 keeps f32's exponent range, so no value is too small or too
// large for the parts, as it would be for f16's (2^-14 .. 65504) without a scale per token.
struct Bf16Parts {
    uint32_t high, middle, low;
};

__device__ __forceinline__ Bf16Parts split_to_bf16(float2 v) {
    const float2 rest{v.x - truncated_to_bf16(v.x), v.y - truncated_to_bf16(v.y)};
    const float2 last{rest.x - truncated_to_bf16(rest.x), rest.y - truncated_to_bf16(rest.y)};
    return {bf16_pair(v.x, v.y), bf16_pair(rest.x, rest.y), bf16_pair(last.x, last.y)};
}

template <typename T>
__device__ __forceinline__ T load(const void* p) {
    return *reinterpret_cast<const T*>(p);
}

// Q4_K and Q8_0 put value 8 quad + i of a sub-block in k slot 4 quad + i and value 8 quad + 4 + i
// in slot 16 + 4 quad + i: a lane's eight values are adjacent, one 8-byte load.
__device__ __forceinline__ Slots adjacent_slots(const int8_t* block, Lane lane) {
    return load<uint2>(block + 8 * lane.quad);
}

// What one lane reads of one weight row for one step, by type: load() fetches it, quants() gives
// a sub-block's A slots, and the scales come as floats.

// Q4_K (file layout, 144-byte blocks: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128
// bytes of nibbles; byte i of 32-byte chunk p holds value 64p + i in its low nibble, sub-block
// 2p, and 64p + 32 + i in its high nibble, sub-block 2p + 1).
struct Q4KRow {
    static constexpr bool kHasMins = true;
    static constexpr bool kScalePer16 = false;
    uint4 header;  // d, dmin, scales
    uint2 chunks[4];

    __device__ void load_step(const DeviceMatrix&, const uint8_t* row, int64_t step, Lane lane) {
        const uint8_t* block = row + step * 144;
        header = load<uint4>(block);
#pragma unroll
        for (int p = 0; p < 4; ++p) chunks[p] = load<uint2>(block + 16 + 32 * p + 8 * lane.quad);
    }
    static __device__ int sub_blocks(const DeviceMatrix&, int64_t) {
        return kSubBlocksPerStep;
    }
    __device__ Slots quants(int sub_block) const {
        const uint2 c = chunks[sub_block / 2];
        const int shift = 4 * (sub_block % 2);
        return {(c.x >> shift) & 0x0f0f0f0fu, (c.y >> shift) & 0x0f0f0f0fu};
    }
    static __device__ Slots activations(const int8_t* block, Lane lane) {
        return adjacent_slots(block, lane);
    }
    // The sub-block's step (d * scale); its offset (dmin * min) is subtract_min_term's.
    __device__ void scales(int sub_block, float& step, float& unused) const {
        int scale, min;
        unpack_scale_min_k4(header.y, header.z, header.w, sub_block, scale, min);
        step = times_small_int(scale, __low2float(*reinterpret_cast<const __half2*>(&header.x)));
        unused = 0;
    }
    // This lane's A pair of the min term's mma: the mins of sub-blocks quad (k = 2 quad) and
    // quad + 4 (k = 2 quad + 1), 6-bit integers and so exact in bf16.
    __device__ uint32_t min_pair(Lane lane) const {
        int scale, low, high;
        unpack_scale_min_k4(header.y, header.z, header.w, lane.quad, scale, low);
        unpack_scale_min_k4(header.y, header.z, header.w, lane.quad + 4, scale, high);
        return bf16_pair(static_cast<float>(low), static_cast<float>(high));
    }
    __device__ float dmin() const {
        return __high2float(*reinterpret_cast<const __half2*>(&header.x));
    }
};

// Q6_K, split (208-byte bodies: ql[128], qh[64], int8 scales[16]; the f16 d apart). Value
// 128h + 32k + l (k < 4, l < 32) has its low 4 bits in ql[64h + 32(k % 2) + l] (low nibble for
// k < 2) and its top 2 in bits 2k of qh[32h + l]; level - 32 is the quant. Sub-block 4h + k has
// a scale per 16 values, so k slots hold values in order: 4 quad + i in slot 4 quad + i (first
// scale), 16 + 4 quad + i in slot 16 + 4 quad + i (second), and each half is its own k16 mma.
struct Q6KRow {
    static constexpr bool kHasMins = false;
    static constexpr bool kScalePer16 = true;
    uint32_t low[2][2][2];  // ql words [h][k % 2][half]
    uint32_t high[2][2];    // qh words [h][half]
    uint4 sub_scales;
    float d;

    __device__ void load_step(const DeviceMatrix& w, const uint8_t* row, int64_t step, Lane lane) {
        const uint8_t* body = row + step * 208;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int l = 16 * half + 4 * lane.quad;
                low[h][0][half] = load<uint32_t>(body + 64 * h + l);
                low[h][1][half] = load<uint32_t>(body + 64 * h + 32 + l);
                high[h][half] = load<uint32_t>(body + 128 + 32 * h + l);
            }
        }
        sub_scales = load<uint4>(body + 192);
        d = load_half(row + w.scales_offset + 2 * step);
    }
    static __device__ int sub_blocks(const DeviceMatrix&, int64_t) {
        return kSubBlocksPerStep;
    }
    __device__ Slots quants(int sub_block) const {
        const int h = sub_block / 4, k = sub_block % 4;
        const int nibble = 4 * (k / 2);
        return {
            static_cast<uint32_t>(q6_levels((low[h][k % 2][0] >> nibble) & 0x0f0f0f0f, high[h][0], 2 * k)),
            static_cast<uint32_t>(q6_levels((low[h][k % 2][1] >> nibble) & 0x0f0f0f0f, high[h][1], 2 * k))};
    }
    static __device__ Slots activations(const int8_t* block, Lane lane) {
        return {load<uint32_t>(block + 4 * lane.quad), load<uint32_t>(block + 16 + 4 * lane.quad)};
    }
    // The steps of the sub-block's two halves (d * scale).
    __device__ void scales(int sub_block, float& first, float& second) const {
        const int8_t* s = reinterpret_cast<const int8_t*>(&sub_scales);
        first = times_small_int(s[2 * sub_block], d);
        second = times_small_int(s[2 * sub_block + 1], d);
    }
};

// Q8_0, split (the quants of every 32-value block in order, then the f16 d's). A step is eight
// blocks; a row whose length is not a multiple of 256 ends in a shorter one.
struct Q80Row {
    static constexpr bool kHasMins = false;
    static constexpr bool kScalePer16 = false;
    uint2 blocks[kSubBlocksPerStep];
    uint4 steps;  // eight f16

    __device__ void load_step(const DeviceMatrix& w, const uint8_t* row, int64_t step, Lane lane) {
        const int count = sub_blocks(w, step);
#pragma unroll
        for (int b = 0; b < kSubBlocksPerStep; ++b)
            if (b < count) blocks[b] = load<uint2>(row + 32 * (step * kSubBlocksPerStep + b) + 8 * lane.quad);
        // Rows are padded to 16 bytes, so these 16 stay inside the row even for a short step.
        steps = load<uint4>(row + w.scales_offset + 2 * kSubBlocksPerStep * step);
    }
    static __device__ int sub_blocks(const DeviceMatrix& w, int64_t step) {
        const int64_t left = w.cols / kActivationBlock - step * kSubBlocksPerStep;
        return static_cast<int>(left < kSubBlocksPerStep ? left : kSubBlocksPerStep);
    }
    __device__ Slots quants(int sub_block) const {
        return blocks[sub_block];
    }
    static __device__ Slots activations(const int8_t* block, Lane lane) {
        return adjacent_slots(block, lane);
    }
    __device__ void scales(int sub_block, float& step, float& unused) const {
        step = __half2float(reinterpret_cast<const __half*>(&steps)[sub_block]);
        unused = 0;
    }
};

// One step's activations in shared memory: each token's int8 values, copied as they are. Rows of
// 288 bytes put the 8-byte reads of a warp's 8 tokens in distinct banks.
template <int kTokens>
struct StagedValues {
    int8_t values[kTokens][kValuesPerStep + 32];
};

// One step's activation scales, prepared once per block rather than by every warp: per sub-block,
// tokens 2i and 2i + 1 side by side (the two a lane scales), as TokenSteps; and the blocks' sums
// (step * the sum of the block's int8 values, for Q4_K's mins) per token as the min term's B pair
// of lane quad reads them: sub-blocks quad and quad + 4. A warp's 32 lanes read 256 adjacent bytes.
template <int kTokens>
struct StagedScales {
    float4 steps[kSubBlocksPerStep][kTokens / 2];  // TokenStep of token 2i, then of 2i + 1
    float2 sums[kTokens][kSubBlocksPerStep / 2];
};

// Padding of the partial sums' rows, so that the 32 lanes' stores fall in 32 banks.
constexpr int kPartialPad = 4;

// Two steps in flight while the warps multiply; then the block's partial sums, [token][row]. At 64
// tokens this is 48 KiB, the most a block declares statically.
template <int kTokens>
struct SharedMemory {
    union {
        StagedValues<kTokens> values[2];
        float partial_sums[kTokens][kRowsPerBlock + kPartialPad];
    };
    StagedScales<kTokens> scales[2];
};

// The whole block copies `step` of the tokens' int8 activations into `staged` (not waiting for
// them). Tokens past the last are left as they were: their sums are never stored.
template <int kThreads, int kTokens>
__device__ __forceinline__ void stage_values(const int8_t* x, int64_t cols, int64_t step, int sub_blocks,
                                             int tokens, StagedValues<kTokens>& staged) {
    const int pieces = sub_blocks * kActivationBlock / 16;
    for (int i = threadIdx.x; i < tokens * kSubBlocksPerStep * 2; i += kThreads) {
        const int token = i / (kSubBlocksPerStep * 2), piece = i % (kSubBlocksPerStep * 2);
        if (piece < pieces)
            copy_16_async(&staged.values[token][16 * piece], x + token * cols + step * kValuesPerStep + 16 * piece);
    }
}

// The (step, sum) pairs of one step that this thread prepares: loaded a step ahead into
// registers, written to shared memory as StagedScales once the warps are done with the buffer.
template <int kThreads, int kTokens>
struct ScalesInFlight {
    static constexpr int kPerThread = (kTokens * kSubBlocksPerStep + kThreads - 1) / kThreads;
    float2 pairs[kPerThread];

    // Entry i of a thread is token (threadIdx.x + i * kThreads) / 8, sub-block % 8.
    __device__ void load(const float2* token_scales, int64_t blocks_per_row, int64_t step, int sub_blocks,
                         int tokens) {
#pragma unroll
        for (int i = 0; i < kPerThread; ++i) {
            const int entry = threadIdx.x + i * kThreads;
            const int token = entry / kSubBlocksPerStep, block = entry % kSubBlocksPerStep;
            if (token < tokens && block < sub_blocks)
                pairs[i] = token_scales[token * blocks_per_row + step * kSubBlocksPerStep + block];
        }
    }
    __device__ void store(int tokens, StagedScales<kTokens>& staged) const {
#pragma unroll
        for (int i = 0; i < kPerThread; ++i) {
            const int entry = threadIdx.x + i * kThreads;
            const int token = entry / kSubBlocksPerStep, block = entry % kSubBlocksPerStep;
            if (token < tokens) {
                const TokenStep s = token_step(pairs[i].x);
                float* steps = reinterpret_cast<float*>(&staged.steps[block][token / 2]);
                steps[2 * (token % 2)] = s.step;
                steps[2 * (token % 2) + 1] = s.minus_bias;
                reinterpret_cast<float*>(&staged.sums[token][block % 4])[block / 4] = pairs[i].y;
            }
        }
    }
};

// Accumulators of one warp: [m tile][n tile][fragment element], element e at row group + 8 (e / 2)
// of the m tile and token 2 quad + e % 2 of the n tile.
template <int kTilesPerWarp, int kTokenTiles>
using Sums = float[kTilesPerWarp][kTokenTiles][4];

// One sub-block of the warp's rows times every token tile, added to `sums`.
template <typename Row, int kTilesPerWarp, int kTokenTiles>
__device__ __forceinline__ void multiply_sub_block(const Row (&rows)[kTilesPerWarp][2], int sub_block,
                                                   const StagedValues<kTokenTiles * kTokensPerTile>& staged,
                                                   const StagedScales<kTokenTiles * kTokensPerTile>& scales,
                                                   Lane lane, Sums<kTilesPerWarp, kTokenTiles>& sums) {
    Slots a[kTilesPerWarp][2];
    float first[kTilesPerWarp][2], second[kTilesPerWarp][2];
#pragma unroll
    for (int i = 0; i < kTilesPerWarp; ++i) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            a[i][h] = rows[i][h].quants(sub_block);
            rows[i][h].scales(sub_block, first[i][h], second[i][h]);
        }
    }
#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j) {
        const int token = j * kTokensPerTile;
        const Slots b =
            Row::activations(&staged.values[token + lane.group][sub_block * kActivationBlock], lane);
        const float4 steps = scales.steps[sub_block][token / 2 + lane.quad];
        const TokenStep s[2] = {{steps.x, steps.y}, {steps.z, steps.w}};
#pragma unroll
        for (int i = 0; i < kTilesPerWarp; ++i) {
            float* out = sums[i][j];
            if constexpr (Row::kScalePer16) {
                int d_first[4] = {kBiasBits, kBiasBits, kBiasBits, kBiasBits};
                int d_second[4] = {kBiasBits, kBiasBits, kBiasBits, kBiasBits};
                mma_k16(d_first, a[i][0].x, a[i][1].x, b.x);
                mma_k16(d_second, a[i][0].y, a[i][1].y, b.y);
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    out[e] = fmaf(first[i][e / 2], scaled_dot(d_first[e], s[e % 2]), out[e]);
                    out[e] = fmaf(second[i][e / 2], scaled_dot(d_second[e], s[e % 2]), out[e]);
                }
            } else {
                int d[4] = {kBiasBits, kBiasBits, kBiasBits, kBiasBits};
                mma_k32(d, a[i][0], a[i][1], b);
#pragma unroll
                for (int e = 0; e < 4; ++e) out[e] = fmaf(first[i][e / 2], scaled_dot(d[e], s[e % 2]), out[e]);
            }
        }
    }
}

// Q4_K's values are d * scale * q - dmin * min: each output loses dmin times the sum over the
// step's sub-blocks j of min_j * (the token's block sum j). That sum is a 16 x 8 x 8 product per m
// and n tile, mins by block sums, on the tensor cores: k = 2 quad is sub-block quad and 2 quad + 1
// is quad + 4, for A (rows[i][h].min_pair) and B (StagedScales::sums) alike. The sums, f32, go in
// as three bf16 parts, smallest first, so that the f32 accumulators add the small parts before
// the large. Then one fma per output and step, where the sub-blocks took eight.
template <typename Row, int kTilesPerWarp, int kTokenTiles>
__device__ __forceinline__ void subtract_min_term(const Row (&rows)[kTilesPerWarp][2],
                                                  const StagedScales<kTokenTiles * kTokensPerTile>& scales, Lane lane,
                                                  Sums<kTilesPerWarp, kTokenTiles>& sums) {
    uint32_t mins[kTilesPerWarp][2];
    float dmin[kTilesPerWarp][2];
#pragma unroll
    for (int i = 0; i < kTilesPerWarp; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            mins[i][h] = rows[i][h].min_pair(lane);
            dmin[i][h] = rows[i][h].dmin();
        }
#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j) {
        const Bf16Parts b = split_to_bf16(scales.sums[j * kTokensPerTile + lane.group][lane.quad]);
#pragma unroll
        for (int i = 0; i < kTilesPerWarp; ++i) {
            float offsets[4] = {0, 0, 0, 0};
            mma_bf16_k8(offsets, mins[i][0], mins[i][1], b.low);
            mma_bf16_k8(offsets, mins[i][0], mins[i][1], b.middle);
            mma_bf16_k8(offsets, mins[i][0], mins[i][1], b.high);
#pragma unroll
            for (int e = 0; e < 4; ++e) sums[i][j][e] = fmaf(-dmin[i][e / 2], offsets[e], sums[i][j][e]);
        }
    }
}

// Block b of a matrix multiplies its rows 128 (b / splits) .. + 127 over its share (b % splits)
// of the steps; the `splits` blocks of a group, one cluster, then add their sums and store them.
template <typename Row, int kTokenTiles, typename Tiles>
__global__ void __launch_bounds__(Tiles::kThreads, Tiles::kMinBlocksPerSm)
    matmul_mma_kernel(MmaJobs jobs, const int8_t* __restrict__ x, const float2* __restrict__ token_scales,
                      int tokens, bool accumulate, int splits) {
    constexpr int kTokens = kTokenTiles * kTokensPerTile;
    constexpr int kTilesPerWarp = Tiles::kTilesPerWarp, kThreads = Tiles::kThreads;
    __shared__ SharedMemory<kTokens> shared;
    // The first matrix's type, cols and layout are every matrix's; only its data and rows differ.
    const DeviceMatrix& w = jobs.w[0];
    const int matrix = matrix_of_block(jobs);
    const int block = static_cast<int>(blockIdx.x) - select(matrix, 0, jobs.first_block[1], jobs.first_block[2]);
    const uint8_t* data = select(matrix, jobs.w[0].data, jobs.w[1].data, jobs.w[2].data);
    const int64_t rows_of_matrix = select(matrix, jobs.w[0].rows, jobs.w[1].rows, jobs.w[2].rows);
    const int warp = threadIdx.x / kWarp;
    const Lane lane{static_cast<int>(threadIdx.x % kWarp) / 4, static_cast<int>(threadIdx.x % 4)};
    const int64_t row_group = block / splits;
    const int split = block % splits;
    const int warp_row = warp * kTilesPerWarp * kRowsPerTile;

    // Rows past the last read the last; their sums are never stored.
    const uint8_t* row_data[kTilesPerWarp][2];
#pragma unroll
    for (int i = 0; i < kTilesPerWarp; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int64_t row = row_group * kRowsPerBlock + warp_row + kRowsPerTile * i + lane.group + 8 * h;
            row_data[i][h] = data + (row < rows_of_matrix ? row : rows_of_matrix - 1) * w.row_stride;
        }

    const int64_t steps = (w.cols + kValuesPerStep - 1) / kValuesPerStep;
    const int64_t first_step = steps * split / splits, last_step = steps * (split + 1) / splits;
    const int64_t blocks_per_row = w.cols / kActivationBlock;
    Row rows[kTilesPerWarp][2];
    const auto load_rows = [&](Row (&into)[kTilesPerWarp][2], int64_t step) {
#pragma unroll
        for (int i = 0; i < kTilesPerWarp; ++i)
#pragma unroll
            for (int h = 0; h < 2; ++h) into[i][h].load_step(w, row_data[i][h], step, lane);
    };
    ScalesInFlight<kThreads, kTokens> next_scales;
    if (first_step < last_step) {
        // No kernel writes weights: the first step's loads go out before the wait.
        load_rows(rows, first_step);
        wait_for_previous_kernel();
        stage_values<kThreads>(x, w.cols, first_step, Row::sub_blocks(w, first_step), tokens, shared.values[0]);
        commit_copies();
        next_scales.load(token_scales, blocks_per_row, first_step, Row::sub_blocks(w, first_step), tokens);
        next_scales.store(tokens, shared.scales[0]);
    }
    Sums<kTilesPerWarp, kTokenTiles> sums = {};
    for (int64_t step = first_step; step < last_step; ++step) {
        const int buffer = static_cast<int>((step - first_step) % 2);
        const bool has_next = step + 1 < last_step;
        // The next step's activations load while this one multiplies.
        if (has_next) {
            stage_values<kThreads>(x, w.cols, step + 1, Row::sub_blocks(w, step + 1), tokens, shared.values[1 - buffer]);
            next_scales.load(token_scales, blocks_per_row, step + 1, Row::sub_blocks(w, step + 1), tokens);
        }
        commit_copies();
        wait_for_copies<1>();  // this step's; the next one's may still be in flight
        __syncthreads();
        // No branch between the sub-blocks of a full step, so that the compiler can interleave
        // their shared-memory reads and mmas.
        const int sub_blocks = Row::sub_blocks(w, step);
        if (sub_blocks == kSubBlocksPerStep) {
#pragma unroll
            for (int sub_block = 0; sub_block < kSubBlocksPerStep; ++sub_block)
                multiply_sub_block<Row, kTilesPerWarp, kTokenTiles>(rows, sub_block, shared.values[buffer], shared.scales[buffer],
                                                     lane, sums);
        } else {
#pragma unroll
            for (int sub_block = 0; sub_block < kSubBlocksPerStep; ++sub_block) {
                if (sub_block >= sub_blocks) break;
                multiply_sub_block<Row, kTilesPerWarp, kTokenTiles>(rows, sub_block, shared.values[buffer], shared.scales[buffer],
                                                     lane, sums);
            }
        }
        // Q4_K's steps are whole super-blocks: all eight sub-blocks.
        if constexpr (Row::kHasMins)
            subtract_min_term<Row, kTilesPerWarp, kTokenTiles>(rows, shared.scales[buffer], lane, sums);
        // The other buffer's scales were last read in the step before, which every warp has left.
        if (has_next) next_scales.store(tokens, shared.scales[1 - buffer]);
        if (has_next) load_rows(rows, step + 1);
        __syncthreads();  // before the next step's copies overwrite this buffer
    }
    if (first_step == last_step) wait_for_previous_kernel();
    wait_for_copies<0>();
    __syncthreads();

#pragma unroll
    for (int i = 0; i < kTilesPerWarp; ++i)
#pragma unroll
        for (int j = 0; j < kTokenTiles; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                shared.partial_sums[j * kTokensPerTile + 2 * lane.quad + e % 2]
                                   [warp_row + kRowsPerTile * i + lane.group + 8 * (e / 2)] = sums[i][j][e];
    sync_splits(splits);
    // Selected again here rather than held in registers through the steps.
    const int matrix_again = matrix_of_block(jobs);
    const int64_t matrix_rows = select(matrix_again, jobs.w[0].rows, jobs.w[1].rows, jobs.w[2].rows);
    float* out = select(matrix_again, jobs.out[0], jobs.out[1], jobs.out[2]);
    if constexpr (kTokens <= 32)
        store_group_sums<kThreads, kRowsPerBlock, kTokens>(&shared.partial_sums[0][0], kRowsPerBlock + kPartialPad,
                                                           row_group, split, splits, tokens, matrix_rows, out,
                                                           accumulate);
    else
        store_group_sums_by_row<kThreads, kRowsPerBlock>(&shared.partial_sums[0][0], kRowsPerBlock + kPartialPad,
                                                         row_group, split, splits, tokens, matrix_rows, out,
                                                         accumulate);
}

template <typename Row, int kTokenTiles, typename Tiles>
void launch_kernel(MmaJobs jobs, const int8_t* x, const float2* token_scales, int tokens, bool accumulate,
                   Stream stream) {
    const auto kernel = matmul_mma_kernel<Row, kTokenTiles, Tiles>;
    static const int blocks_per_sm = [&] {
        int blocks = 0;
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, Tiles::kThreads, 0);
        return blocks;
    }();
    // One split for every matrix (a launch has one cluster size); the rows' length is theirs alike.
    const int64_t steps = (jobs.w[0].cols + kValuesPerStep - 1) / kValuesPerStep;
    const int splits = splits_for(row_groups(jobs, kRowsPerBlock), steps, blocks_per_sm);
    const int64_t blocks = assign_blocks(jobs, kRowsPerBlock, splits);
    launch_in_clusters(kernel, dim3(static_cast<unsigned>(blocks)), dim3(Tiles::kThreads),
                       static_cast<unsigned>(splits), 0, stream, jobs, x, token_scales, tokens, accumulate, splits);
}

// The kernel for exactly ceil(tokens / 8) token tiles: no tile is skipped at run time, as a
// branch between tiles would keep the compiler from interleaving them.
template <typename Row, int kTokenTiles>
void launch_for_tiles(const MmaJobs& jobs, const int8_t* x, const float2* token_scales, int tokens,
                      bool accumulate, Stream stream) {
    if constexpr (kTokenTiles > 1) {
        if (tokens <= (kTokenTiles - 1) * kTokensPerTile)
            return launch_for_tiles<Row, kTokenTiles - 1>(jobs, x, token_scales, tokens, accumulate, stream);
    }
    using Tiles = WarpTiles<kTokenTiles >= kOneTilePerWarpFrom ? 1 : 2>;
    launch_kernel<Row, kTokenTiles, Tiles>(jobs, x, token_scales, tokens, accumulate, stream);
}

}  // namespace

void matmul_int8_mma(const MatvecProduct* products, int count, const int8_t* values, const float* block_scales,
                     int64_t tokens, bool accumulate, Stream stream) {
    const auto* scales = reinterpret_cast<const float2*>(block_scales);
    const DeviceMatrix& first_w = products[0].w;
    const int64_t blocks_per_row = first_w.cols / kActivationBlock;
    for (int64_t first = 0; first < tokens; first += kMaxTokensPerLaunch) {
        const int n = static_cast<int>(std::min<int64_t>(kMaxTokensPerLaunch, tokens - first));
        const int8_t* x = values + first * first_w.cols;
        const float2* s = scales + first * blocks_per_row;
        const MmaJobs jobs = jobs_from(products, count, first);
        if (first_w.type == type_id::Q4_K) launch_for_tiles<Q4KRow, kMaxTokenTiles>(jobs, x, s, n, accumulate, stream);
        if (first_w.type == type_id::Q6_K) launch_for_tiles<Q6KRow, kMaxTokenTiles>(jobs, x, s, n, accumulate, stream);
        if (first_w.type == type_id::Q8_0) launch_for_tiles<Q80Row, kMaxTokenTiles>(jobs, x, s, n, accumulate, stream);
    }
}

void matmul_int8_mma(const DeviceMatrix& w, const int8_t* values, const float* block_scales, int64_t tokens,
                     float* out, bool accumulate, Stream stream) {
    const MatvecProduct product{w, out};
    matmul_int8_mma(&product, 1, values, block_scales, tokens, accumulate, stream);
}

}  // namespace hearth::cuda
