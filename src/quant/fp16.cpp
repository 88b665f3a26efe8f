#include "quant/fp16.h"

namespace hearth::quant {
namespace {

// Rounds away the low `shift` bits of `bits`, to nearest with ties to even.
uint32_t shift_right_rounding_to_even(uint32_t bits, uint32_t shift) {
    const uint32_t kept = bits >> shift;
    const uint32_t dropped = bits & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    const bool round_up = dropped > half || (dropped == half && (kept & 1) != 0);
    return kept + (round_up ? 1 : 0);
}

}  // namespace

uint16_t fp32_to_fp16(float value) {
    constexpr uint32_t kInfinityBits = 0x7f800000;
    constexpr uint32_t kFirstOverflowBits = 0x477ff000;   // 65520: halfway from 65504 to 2^16
    constexpr uint32_t kSmallestNormalBits = 0x38800000;  // 2^-14
    constexpr uint16_t kQuietNaN = 0x7e00;
    constexpr uint16_t kInfinity = 0x7c00;

    const uint32_t bits = std::bit_cast<uint32_t>(value);
    const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
    const uint32_t magnitude = bits & 0x7fffffff;

    if (magnitude > kInfinityBits) return sign | kQuietNaN;
    if (magnitude >= kFirstOverflowBits) return sign | kInfinity;
    if (magnitude < kSmallestNormalBits) {
        // Half subnormal: count units of 2^-24. The f32 is m * 2^(e - 150) with the implicit
        // bit in m, so the count is m * 2^(e - 126), a right shift by 126 - e >= 14.
        const uint32_t exponent = magnitude >> 23;
        const uint32_t shift = 126 - exponent;
        if (shift > 24) return sign;  // below half of 2^-24: rounds to zero
        const uint32_t significand = (magnitude & 0x7fffff) | 0x800000;
        return sign | static_cast<uint16_t>(shift_right_rounding_to_even(significand, shift));
    }
    // Normal: rebias the exponent (127 -> 15) and keep 10 of 23 mantissa bits; a carry out of
    // the mantissa correctly bumps the exponent.
    const uint32_t rebiased = magnitude - ((127u - 15u) << 23);
    return sign | static_cast<uint16_t>(shift_right_rounding_to_even(rebiased, 13));
}

uint16_t fp32_to_bf16(float value) {
    const uint32_t bits = std::bit_cast<uint32_t>(value);
    if ((bits & 0x7fffffff) > 0x7f800000) {
        return static_cast<uint16_t>((bits >> 16) | 0x0040);  // NaN: force the quiet bit
    }
    return static_cast<uint16_t>(shift_right_rounding_to_even(bits, 16));
}

}  // namespace hearth::quant
