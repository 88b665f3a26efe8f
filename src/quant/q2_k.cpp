#include "quant/q2_k.h"

#include <algorithm>
#include <cmath>

#include "quant/fp16.h"
#include "quant/rounding.h"
#include "quant/scale_search.h"

namespace hearth::quant {
namespace {

constexpr int kSubBlocks = 16;
constexpr int kSubBlockElems = 16;
constexpr float kMaxFourBit = 15.0f;

// Re-rounds the values of each sub-block against its scale and min as stored.
void requantize(const float* x, const BlockQ2K& block, uint8_t levels[256]) {
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int j = 0; j < kSubBlocks; ++j) {
        const float sub_scale = d * (block.scales[j] & 0x0f);
        if (sub_scale == 0.0f) continue;
        const float sub_min = dmin * (block.scales[j] >> 4);
        for (int i = 0; i < kSubBlockElems; ++i) {
            const int level = nearest_int((x[kSubBlockElems * j + i] + sub_min) / sub_scale);
            levels[kSubBlockElems * j + i] = static_cast<uint8_t>(std::clamp(level, 0, 3));
        }
    }
}

}  // namespace

void pack_2bit_levels(const uint8_t levels[256], uint8_t qs[64]) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* L = levels + 128 * half;
        for (int l = 0; l < 32; ++l) {
            qs[32 * half + l] =
                static_cast<uint8_t>(L[l] | (L[l + 32] << 2) | (L[l + 64] << 4) | (L[l + 96] << 6));
        }
    }
}

void dequantize_row_q2_k(const BlockQ2K* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ2K::kElems; ++b) {
        const BlockQ2K& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        const float dmin = fp16_to_fp32(block.dmin);
        float* y = out + b * BlockQ2K::kElems;
        // Value e sits in sub-block e/16; its bits are at shift 2*((e % 128)/32) of qs[32*(e/128) + e%32].
        for (int e = 0; e < BlockQ2K::kElems; e += kSubBlockElems) {
            const uint8_t scale_min = block.scales[e / kSubBlockElems];
            const float sub_scale = d * (scale_min & 0x0f);
            const float sub_min = dmin * (scale_min >> 4);
            const uint8_t* q = block.qs + 32 * (e / 128) + e % 32;
            const int shift = 2 * ((e % 128) / 32);
            for (int l = 0; l < kSubBlockElems; ++l) y[e + l] = sub_scale * ((q[l] >> shift) & 3) - sub_min;
        }
    }
}

void quantize_row_q2_k(const float* in, BlockQ2K* blocks, int64_t n) {
    // llama.cpp's reference search for 2 bits: least absolute error, weights |x|.
    constexpr AffineSearch kSearch{.nmax = 3, .rmin = -0.5f, .rdelta = 0.1f, .nstep = 15, .use_mad = true};
    for (int64_t b = 0; b < n / BlockQ2K::kElems; ++b) {
        const float* x = in + b * BlockQ2K::kElems;
        BlockQ2K& block = blocks[b];
        uint8_t levels[BlockQ2K::kElems];
        float scales[kSubBlocks];
        float mins[kSubBlocks];
        float max_scale = 0;  // scales are never negative: the min absorbs the offset
        float max_min = 0;
        for (int j = 0; j < kSubBlocks; ++j) {
            const float* xj = x + kSubBlockElems * j;
            float weights[kSubBlockElems];
            for (int l = 0; l < kSubBlockElems; ++l) weights[l] = std::fabs(xj[l]);
            uint8_t scratch[kSubBlockElems];
            scales[j] = make_qkx2_quants(kSubBlockElems, xj, weights, kSearch, levels + kSubBlockElems * j,
                                         &mins[j], scratch);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }

        // 4-bit scales and mins relative to the largest of each; as in ggml the rounded value
        // is narrowed to a byte without clamping.
        for (int j = 0; j < kSubBlocks; ++j) block.scales[j] = 0;
        block.d = 0;
        block.dmin = 0;
        if (max_scale > 0) {
            const float inverse = kMaxFourBit / max_scale;
            for (int j = 0; j < kSubBlocks; ++j)
                block.scales[j] = static_cast<uint8_t>(nearest_int(inverse * scales[j]));
            block.d = fp32_to_fp16(max_scale / kMaxFourBit);
        }
        if (max_min > 0) {
            const float inverse = kMaxFourBit / max_min;
            for (int j = 0; j < kSubBlocks; ++j) {
                block.scales[j] |= static_cast<uint8_t>(nearest_int(inverse * mins[j]) << 4);
            }
            block.dmin = fp32_to_fp16(max_min / kMaxFourBit);
        }
        requantize(x, block, levels);
        pack_2bit_levels(levels, block.qs);
    }
}

}  // namespace hearth::quant
