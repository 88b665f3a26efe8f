#include "quant/mxfp4.h"

#include <bit>
#include <cmath>

#include "quant/group_stats.h"

namespace hearth::quant {
namespace {

// E2M1 values doubled (so that they are integers); the scale is halved to match.
constexpr int8_t kDoubledFp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 128): half the E8M0 scale, compensating the doubled E2M1 values. e = 0 and 1 give
// f32 subnormals.
float half_e8m0_scale(uint8_t e) {
    const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
    return std::bit_cast<float>(bits);
}

// Index of the E2M1 value nearest to x at scale d; the first of equally near values wins.
uint8_t nearest_fp4(float x, float d) {
    uint8_t best = 0;
    float best_error = std::fabs(kDoubledFp4[0] * d - x);
    for (uint8_t i = 1; i < 16; ++i) {
        const float error = std::fabs(kDoubledFp4[i] * d - x);
        if (error < best_error) {
            best = i;
            best_error = error;
        }
    }
    return best;
}

}  // namespace

void dequantize_row_mxfp4(const BlockMXFP4* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockMXFP4::kElems; ++b) {
        const BlockMXFP4& block = blocks[b];
        const float d = half_e8m0_scale(block.e);
        float* y = out + b * BlockMXFP4::kElems;
        for (int j = 0; j < 16; ++j) {
            y[j] = kDoubledFp4[block.qs[j] & 0x0f] * d;
            y[j + 16] = kDoubledFp4[block.qs[j] >> 4] * d;
        }
    }
}

void quantize_row_mxfp4(const float* in, BlockMXFP4* blocks, int64_t n) {
    for (int64_t b = 0; b < n / BlockMXFP4::kElems; ++b) {
        const float* x = in + b * BlockMXFP4::kElems;
        BlockMXFP4& block = blocks[b];
        const float amax = largest_magnitude(x, BlockMXFP4::kElems).magnitude;
        // The exponent puts amax in [4, 8) times the scale, i.e. on the top E2M1 octave (4, 6).
        // As on x86, the float goes through int and wraps to a byte.
        const uint8_t e =
            amax > 0.0f ? static_cast<uint8_t>(static_cast<int>(std::floor(std::log2(amax)) - 2 + 127)) : 0;
        block.e = e;
        const float d = half_e8m0_scale(e);
        for (int j = 0; j < 16; ++j) {
            block.qs[j] = static_cast<uint8_t>(nearest_fp4(x[j], d) | (nearest_fp4(x[j + 16], d) << 4));
        }
    }
}

}  // namespace hearth::quant
