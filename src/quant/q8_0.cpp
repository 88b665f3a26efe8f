#include "quant/q8_0.h"

#include <cmath>

#include "quant/fp16.h"
#include "quant/group_stats.h"

namespace hearth::quant {

void dequantize_row_q8_0(const BlockQ8_0* blocks, float* out, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ8_0::kElems; ++b) {
        const BlockQ8_0& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        float* y = out + b * BlockQ8_0::kElems;
        for (int j = 0; j < BlockQ8_0::kElems; ++j) y[j] = block.qs[j] * d;
    }
}

void quantize_row_q8_0(const float* in, BlockQ8_0* blocks, int64_t n) {
    for (int64_t b = 0; b < n / BlockQ8_0::kElems; ++b) {
        const float* x = in + b * BlockQ8_0::kElems;
        BlockQ8_0& block = blocks[b];
        const float d = largest_magnitude(x, BlockQ8_0::kElems).magnitude / 127;
        const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
        block.d = fp32_to_fp16(d);
        // roundf: halves away from zero (unlike the K-quants' nearest_int).
        for (int j = 0; j < BlockQ8_0::kElems; ++j) {
            block.qs[j] = static_cast<int8_t>(std::round(x[j] * inverse_d));
        }
    }
}

}  // namespace hearth::quant
