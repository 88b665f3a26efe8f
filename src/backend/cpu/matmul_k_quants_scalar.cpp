// The scalar K-quant kernels: the readable reference of the integer method the AVX2 and
// AVX-512 kernels vectorize. Per super-block of 256 values and per token:
//   sumi = sum over sub-blocks j of scale_j * dot(q_j, x_j)      (exact, in int32)
//   y   += (d * x.d) * sumi
// Formats whose values are offset (Q6_K's q - 32, Q3_K's q - 4) fold the offset in through the
// Q8_K group sums: dot(q - c, x) = dot(q, x) - c * bsum. Formats with mins (Q2_K, Q4_K, Q5_K)
// subtract (dmin * x.d) * sum_j min_j * bsum_j. Only the last two lines round.
#include <cstdint>

#include "backend/cpu/matmul_k_quants.h"
#include "quant/fp16.h"
#include "quant/iq4_grid.h"
#include "quant/q2_k.h"
#include "quant/q3_k.h"
#include "quant/q4_k.h"
#include "quant/q5_k.h"
#include "quant/q6_k.h"
#include "quant/q8_k.h"

namespace hearth::cpu::detail::k_quants {

namespace {

using quant::BlockQ8K;

// The integer sums of one weight super-block against one Q8_K block.
struct BlockSums {
    int32_t scaled = 0;  // sum_j scale_j * dot(q_j, x_j), offsets folded in
    int32_t mins = 0;    // sum_j min_j * sum(x_j), for formats with mins
};

// Sum of the Q8_K quants of values [first, first + count), count a multiple of 16, from bsums.
int32_t q8_group_sum(const BlockQ8K& x, int first, int count) {
    int32_t sum = 0;
    for (int g = first / 16; g < (first + count) / 16; ++g) sum += x.bsums[g];
    return sum;
}

// --- Q4_K / Q5_K: 8 sub-blocks of 32, value 64c + l in the low nibble of qs[32c + l], value
// 64c + 32 + l in the high nibble; Q5_K's 5th bit of value 64c + 32h + l is bit 2c + h of qh[l].

int q4_k_level(const quant::BlockQ4K& block, int e) {
    const uint8_t byte = block.qs[32 * (e / 64) + e % 32];
    return (e % 64) < 32 ? (byte & 0x0f) : (byte >> 4);
}

int q5_k_level(const quant::BlockQ5K& block, int e) {
    const uint8_t byte = block.qs[32 * (e / 64) + e % 32];
    const int low = (e % 64) < 32 ? (byte & 0x0f) : (byte >> 4);
    return low | (((block.qh[e % 32] >> (e / 32)) & 1) << 4);
}

template <class Block, int (*level)(const Block&, int)>
BlockSums scale_min_k4_sums(const Block& block, const BlockQ8K& x) {
    BlockSums sums;
    for (int j = 0; j < 8; ++j) {
        const quant::ScaleMin scale_min = quant::unpack_scale_min_k4(block.header.scales, j);
        int32_t dot = 0;
        for (int l = 0; l < 32; ++l) dot += level(block, 32 * j + l) * x.qs[32 * j + l];
        sums.scaled += scale_min.scale * dot;
        sums.mins += scale_min.min * q8_group_sum(x, 32 * j, 32);
    }
    return sums;
}

// --- Q6_K: 16 sub-blocks of 16, q in 0..63 stored as q - 32 is the value.

int q6_k_level(const quant::BlockQ6K& block, int e) {
    const int half = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint8_t low_byte = block.ql[64 * half + 32 * (k % 2) + l];
    const int low = k < 2 ? (low_byte & 0x0f) : (low_byte >> 4);
    const int high = (block.qh[32 * half + l] >> (2 * k)) & 3;
    return low | (high << 4);
}

BlockSums q6_k_sums(const quant::BlockQ6K& block, const BlockQ8K& x) {
    BlockSums sums;
    for (int j = 0; j < 16; ++j) {
        int32_t dot = 0;
        for (int l = 0; l < 16; ++l) dot += q6_k_level(block, 16 * j + l) * x.qs[16 * j + l];
        sums.scaled += block.scales[j] * (dot - 32 * x.bsums[j]);
    }
    return sums;
}

// --- Q2_K / Q3_K: 16 sub-blocks of 16; the low 2 bits of value 128h + 32k + l are bits 2k, 2k+1
// of qs[32h + l]; Q3_K's 3rd bit of value e is bit e/32 of hmask[e % 32] and the value is q - 4.

int two_bit_level(const uint8_t qs[64], int e) {
    return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

BlockSums q2_k_sums(const quant::BlockQ2K& block, const BlockQ8K& x) {
    BlockSums sums;
    for (int j = 0; j < 16; ++j) {
        int32_t dot = 0;
        for (int l = 0; l < 16; ++l) dot += two_bit_level(block.qs, 16 * j + l) * x.qs[16 * j + l];
        sums.scaled += (block.scales[j] & 0x0f) * dot;
        sums.mins += (block.scales[j] >> 4) * x.bsums[j];
    }
    return sums;
}

BlockSums q3_k_sums(const quant::BlockQ3K& block, const BlockQ8K& x) {
    BlockSums sums;
    for (int j = 0; j < 16; ++j) {
        int32_t dot = 0;
        for (int l = 0; l < 16; ++l) {
            const int e = 16 * j + l;
            const int level = two_bit_level(block.qs, e) | (((block.hmask[e % 32] >> (e / 32)) & 1) << 2);
            dot += level * x.qs[e];
        }
        sums.scaled += q3_k_scale(block.scales, j) * (dot - 4 * x.bsums[j]);
    }
    return sums;
}

// --- IQ4_XS: 8 sub-blocks of 32, values on the non-linear grid; sub-block j's byte l holds
// value 32j + l (low nibble) and 32j + 16 + l (high nibble); scales are 6 bits stored + 32.

BlockSums iq4_xs_sums(const quant::BlockIQ4XS& block, const BlockQ8K& x) {
    BlockSums sums;
    for (int j = 0; j < 8; ++j) {
        int32_t dot = 0;
        for (int l = 0; l < 16; ++l) {
            const uint8_t byte = block.qs[16 * j + l];
            dot += quant::kIq4Grid[byte & 0x0f] * x.qs[32 * j + l];
            dot += quant::kIq4Grid[byte >> 4] * x.qs[32 * j + 16 + l];
        }
        sums.scaled += iq4_xs_scale(block, j) * dot;
    }
    return sums;
}

// --- The f32 super-scales of each format.

struct SuperScales {
    float d = 0;
    float dmin = 0;
};

SuperScales super_scales(const quant::BlockQ4K& b) {
    return {quant::fp16_to_fp32(b.header.d), quant::fp16_to_fp32(b.header.dmin)};
}
SuperScales super_scales(const quant::BlockQ5K& b) {
    return {quant::fp16_to_fp32(b.header.d), quant::fp16_to_fp32(b.header.dmin)};
}
SuperScales super_scales(const quant::BlockQ6K& b) {
    return {quant::fp16_to_fp32(b.d), 0.0f};
}
SuperScales super_scales(const quant::BlockQ3K& b) {
    return {quant::fp16_to_fp32(b.d), 0.0f};
}
SuperScales super_scales(const quant::BlockQ2K& b) {
    return {quant::fp16_to_fp32(b.d), quant::fp16_to_fp32(b.dmin)};
}
SuperScales super_scales(const quant::BlockIQ4XS& b) {
    return {quant::fp16_to_fp32(b.d), 0.0f};
}

template <class Block, BlockSums (*block_sums)(const Block&, const BlockQ8K&)>
float dot_row(const Block* blocks, const BlockQ8K* x, int64_t block_count) {
    float sum = 0;
    for (int64_t b = 0; b < block_count; ++b) {
        const BlockSums sums = block_sums(blocks[b], x[b]);
        const SuperScales scales = super_scales(blocks[b]);
        sum += (scales.d * x[b].d) * static_cast<float>(sums.scaled);
        sum -= (scales.dmin * x[b].d) * static_cast<float>(sums.mins);
    }
    return sum;
}

template <class Block, BlockSums (*block_sums)(const Block&, const BlockQ8K&), int kTokens>
void tile(const uint8_t* weight_row, size_t /*row_bytes: one row*/, int64_t cols, const uint8_t* prepared,
          size_t prepared_stride, float* y, int64_t y_stride) {
    const auto* w = reinterpret_cast<const Block*>(weight_row);
    for (int t = 0; t < kTokens; ++t) {
        const auto* x = reinterpret_cast<const BlockQ8K*>(prepared + t * prepared_stride);
        y[t * y_stride] = dot_row<Block, block_sums>(w, x, cols / BlockQ8K::kElems);
    }
}

// Four tokens per visit of a weight row, so the row is read from L1 for the last three.
constexpr int kTileTokens = 4;

template <class Block, BlockSums (*block_sums)(const Block&, const BlockQ8K&)>
constexpr const MatmulKernel* kKernel =
    &kRowTileKernel<kTileTokens, tile<Block, block_sums, kTileTokens>, tile<Block, block_sums, 1>>;

}  // namespace

const MatmulKernel* find_scalar_kernel(quant::Type type) {
    using quant::Type;
    switch (type) {
        case Type::Q2_K:
            return kKernel<quant::BlockQ2K, q2_k_sums>;
        case Type::Q3_K:
            return kKernel<quant::BlockQ3K, q3_k_sums>;
        case Type::Q4_K:
            return kKernel<quant::BlockQ4K, scale_min_k4_sums<quant::BlockQ4K, q4_k_level>>;
        case Type::Q5_K:
            return kKernel<quant::BlockQ5K, scale_min_k4_sums<quant::BlockQ5K, q5_k_level>>;
        case Type::Q6_K:
            return kKernel<quant::BlockQ6K, q6_k_sums>;
        case Type::IQ4_XS:
            return kKernel<quant::BlockIQ4XS, iq4_xs_sums>;
        default:
            return nullptr;
    }
}

}  // namespace hearth::cpu::detail::k_quants
