#include "quant/float_rows.h"

#include <cstring>

#include "quant/fp16.h"

namespace hearth::quant {

void dequantize_row_f32(const float* in, float* out, int64_t n) {
    std::memcpy(out, in, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f32(const float* in, float* out, int64_t n) {
    std::memcpy(out, in, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_row_f16(const uint16_t* in, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(in[i]);
}

void quantize_row_f16(const float* in, uint16_t* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(in[i]);
}

void dequantize_row_bf16(const uint16_t* in, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_fp32(in[i]);
}

void quantize_row_bf16(const float* in, uint16_t* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(in[i]);
}

}  // namespace hearth::quant
