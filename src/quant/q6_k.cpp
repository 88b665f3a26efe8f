#include "quant/q6_k.h"

#include <algorithm>
#include <cmath>

#include "quant/fp16.h"
#include "quant/group_stats.h"
#include "quant/rounding.h"
#include "quant/scale_search.h"

namespace hearth::quant {
namespace {

constexpr int kSubBlocks = 16;
constexpr int kSubBlockElems = 16;

void pack_6bit_levels(const int8_t levels[256], BlockQ6K* block) {
    for (int half = 0; half < 2; ++half) {
        const int8_t* L = levels + 128 * half;
        uint8_t* ql = block->ql + 64 * half;
        uint8_t* qh = block->qh + 32 * half;
        for (int l = 0; l < 32; ++l) {
            ql[l] = static_cast<uint8_t>((L[l] & 0x0f) | ((L[l + 64] & 0x0f) << 4));
            ql[l + 32] = static_cast<uint8_t>((L[l + 32] & 0x0f) | ((L[l + 96] & 0x0f) << 4));
            qh[l] = static_cast<uint8_t>((L[l] >> 4) | ((L[l + 32] >> 4) << 2) | ((L[l + 64] >> 4) << 4) |
                                         ((L[l + 96] >> 4) << 6));
        }
    }
}

}  // namespace

void dequantize_row_q6_k(const BlockQ6K* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ6K::kElems; ++b) {
        const BlockQ6K& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        float* y = out + b * BlockQ6K::kElems;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* ql = block.ql + 64 * half;
            const uint8_t* qh = block.qh + 32 * half;
            const int8_t* scales = block.scales + 8 * half;
            for (int l = 0; l < 32; ++l) {
                const int sub = l / 16;
                const int q0 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q1 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * scales[sub] * q0;
                y[l + 32] = d * scales[sub + 2] * q1;
                y[l + 64] = d * scales[sub + 4] * q2;
                y[l + 96] = d * scales[sub + 6] * q3;
            }
            y += 128;
        }
    }
}

void quantize_row_q6_k(const float* in, BlockQ6K* blocks, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ6K::kElems; ++b) {
        const float* x = in + b * BlockQ6K::kElems;
        BlockQ6K& block = blocks[b];
        int8_t levels[BlockQ6K::kElems];
        float scales[kSubBlocks];
        float max_scale = 0;
        float max_abs_scale = 0;
        for (int j = 0; j < kSubBlocks; ++j) {
            scales[j] =
                make_qx_quants(kSubBlockElems, 32, x + kSubBlockElems * j, levels + kSubBlockElems * j);
            if (std::fabs(scales[j]) > max_abs_scale) {
                max_abs_scale = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < kGroupMaxEps) {
            block = BlockQ6K{};
            continue;
        }

        // 8-bit sub-block scales relative to the largest; it maps to -128, clamped to 127.
        const float inverse_scale = -128.0f / max_scale;
        block.d = fp32_to_fp16(1 / inverse_scale);
        for (int j = 0; j < kSubBlocks; ++j) {
            block.scales[j] = static_cast<int8_t>(std::min(127, nearest_int(inverse_scale * scales[j])));
        }

        // Re-round every value against the scale as stored.
        const float d = fp16_to_fp32(block.d);
        for (int j = 0; j < kSubBlocks; ++j) {
            const float sub_scale = d * block.scales[j];
            if (sub_scale == 0.0f) continue;
            for (int i = 0; i < kSubBlockElems; ++i) {
                const int level = nearest_int(x[kSubBlockElems * j + i] / sub_scale);
                levels[kSubBlockElems * j + i] = static_cast<int8_t>(std::clamp(level, -32, 31) + 32);
            }
        }
        pack_6bit_levels(levels, &block);
    }
}

}  // namespace hearth::quant
