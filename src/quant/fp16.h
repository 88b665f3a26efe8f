// Conversions between f32 and the two 16-bit float formats of GGUF files (IEEE half and
// bfloat16), rounding exactly as ggml does, so that quantized scales and F16/BF16 rows match
// llama.cpp's bytes.
#pragma once

#include <bit>
#include <cstdint>

namespace hearth::quant {

// IEEE binary16 to binary32: exact for every finite value, subnormals included. A NaN stays a
// NaN of the same sign and payload, made quiet (as ggml's conversion on x86 does).
inline float fp16_to_fp32(uint16_t half) {
    constexpr uint32_t kHalfExponentBias = 15;
    constexpr uint32_t kFloatExponentBias = 127;
    const uint32_t sign = static_cast<uint32_t>(half & 0x8000) << 16;
    const uint32_t exponent = (half >> 10) & 0x1f;
    const uint32_t mantissa = half & 0x3ff;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24, exact in f32.
        const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
        return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
    }
    if (exponent == 0x1f) {
        const uint32_t quiet_bit = mantissa != 0 ? 0x00400000u : 0u;
        return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13) | quiet_bit);
    }
    const uint32_t float_exponent = exponent - kHalfExponentBias + kFloatExponentBias;
    return std::bit_cast<float>(sign | (float_exponent << 23) | (mantissa << 13));
}

// binary32 to binary16, rounding to nearest even; values from 65520 up become infinity,
// values below 2^-14 become subnormals (or zero), and every NaN becomes the quiet NaN 0x7e00
// with its sign, as in ggml.
uint16_t fp32_to_fp16(float value);

// bfloat16 is the top half of an f32.
inline float bf16_to_fp32(uint16_t bf16) {
    return std::bit_cast<float>(static_cast<uint32_t>(bf16) << 16);
}

// f32 to bfloat16, rounding to nearest even; a NaN keeps its top half with the quiet bit set.
uint16_t fp32_to_bf16(float value);

}  // namespace hearth::quant
