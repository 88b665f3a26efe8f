#include "quant/scale_min_k4.h"

#include <algorithm>
#include <cmath>

#include "quant/fp16.h"
#include "quant/rounding.h"

namespace hearth::quant {
namespace {

constexpr int kSubBlocks = 8;
constexpr int kSubBlockElems = 32;
constexpr int kMaxSixBit = 63;

// Scale (returned) and -min of one sub-block, levels into `levels`.
float search_sub_block(const float* x, const AffineSearch& search, uint8_t* levels, float* minus_min) {
    float sum_x2 = 0;
    for (int l = 0; l < kSubBlockElems; ++l) sum_x2 += x[l] * x[l];
    const float rms = std::sqrt(sum_x2 / kSubBlockElems);
    float weights[kSubBlockElems];
    for (int l = 0; l < kSubBlockElems; ++l) weights[l] = rms + std::fabs(x[l]);
    uint8_t scratch[kSubBlockElems];
    return make_qkx2_quants(kSubBlockElems, x, weights, search, levels, minus_min, scratch);
}

// Quantizes a non-negative value to 6 bits against the largest such value; ggml narrows the
// rounded value to uint8 before clamping, so that is done here too.
uint8_t six_bit(float inverse_scale, float value) {
    const auto level = static_cast<uint8_t>(nearest_int(inverse_scale * value));
    return std::min<uint8_t>(kMaxSixBit, level);
}

}  // namespace

void pack_scales_mins_k4(const uint8_t scales[8], const uint8_t mins[8], uint8_t packed[kScaleMinBytes]) {
    for (int j = 0; j < 4; ++j) {
        packed[j] = scales[j];
        packed[j + 4] = mins[j];
    }
    for (int j = 4; j < kSubBlocks; ++j) {
        packed[j + 4] = static_cast<uint8_t>((scales[j] & 0x0f) | ((mins[j] & 0x0f) << 4));
        packed[j - 4] |= static_cast<uint8_t>((scales[j] >> 4) << 6);
        packed[j] |= static_cast<uint8_t>((mins[j] >> 4) << 6);
    }
}

void quantize_scale_min_super_block(const float* x, const AffineSearch& search, ScaleMinHeader* header,
                                    uint8_t levels[256]) {
    float scales[kSubBlocks];
    float mins[kSubBlocks];
    float max_scale = 0;  // scales are never negative: the min absorbs the offset
    float max_min = 0;
    for (int j = 0; j < kSubBlocks; ++j) {
        scales[j] = search_sub_block(x + kSubBlockElems * j, search, levels + kSubBlockElems * j, &mins[j]);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }

    const float inverse_scale = max_scale > 0 ? kMaxSixBit / max_scale : 0.0f;
    const float inverse_min = max_min > 0 ? kMaxSixBit / max_min : 0.0f;
    uint8_t quantized_scales[kSubBlocks];
    uint8_t quantized_mins[kSubBlocks];
    for (int j = 0; j < kSubBlocks; ++j) {
        quantized_scales[j] = six_bit(inverse_scale, scales[j]);
        quantized_mins[j] = six_bit(inverse_min, mins[j]);
    }
    pack_scales_mins_k4(quantized_scales, quantized_mins, header->scales);
    header->d = fp32_to_fp16(max_scale / kMaxSixBit);
    header->dmin = fp32_to_fp16(max_min / kMaxSixBit);

    // Re-round every value against the scale and min as stored (fp16 times 6 bits).
    const float d = fp16_to_fp32(header->d);
    const float dmin = fp16_to_fp32(header->dmin);
    for (int j = 0; j < kSubBlocks; ++j) {
        const ScaleMin scale_min = unpack_scale_min_k4(header->scales, j);
        const float sub_scale = d * scale_min.scale;
        if (sub_scale == 0.0f) continue;
        const float sub_min = dmin * scale_min.min;
        for (int i = 0; i < kSubBlockElems; ++i) {
            const int level = nearest_int((x[kSubBlockElems * j + i] + sub_min) / sub_scale);
            levels[kSubBlockElems * j + i] = static_cast<uint8_t>(std::clamp(level, 0, search.nmax));
        }
    }
}

}  // namespace hearth::quant
