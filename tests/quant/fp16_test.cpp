#include "quant/fp16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

namespace hearth::quant {
namespace {

uint32_t bits_of(float value) {
    return std::bit_cast<uint32_t>(value);
}

TEST(Fp16, EveryHalfConvertsToFloatAndBackUnchanged) {
    for (uint32_t half = 0; half <= 0xffff; ++half) {
        const float value = fp16_to_fp32(static_cast<uint16_t>(half));
        if (std::isnan(value)) continue;
        ASSERT_EQ(fp32_to_fp16(value), half) << std::hex << half;
    }
}

TEST(Fp16, DecodesNormalsSubnormalsAndSpecials) {
    EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
    EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
    EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
    EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);  // smallest subnormal
    EXPECT_EQ(fp16_to_fp32(0x03ff), 1023 * 0x1p-24f);
    EXPECT_EQ(bits_of(fp16_to_fp32(0x8000)), 0x80000000u);  // -0 keeps its sign
    EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());
    EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
    EXPECT_EQ(bits_of(fp16_to_fp32(0x7e00)), 0x7fc00000u);
    EXPECT_EQ(bits_of(fp16_to_fp32(0x7c01)), 0x7fc02000u);  // signalling NaN comes back quiet
}

TEST(Fp16, RoundsToNearestEven) {
    // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to even (1).
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);
    // 1 + 3*2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
    EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);  // just above halfway
    EXPECT_EQ(fp32_to_fp16(0.1f), 0x2e66);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(Fp16, RoundsSubnormalsToNearestEven) {
    EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);            // half of the smallest: ties to 0
    EXPECT_EQ(fp32_to_fp16(0x1p-25f * 1.0001f), 0x0001);  // just above half
    EXPECT_EQ(fp32_to_fp16(3 * 0x1p-25f), 0x0002);        // 1.5 units: ties to even 2
    EXPECT_EQ(fp32_to_fp16(0x1p-30f), 0x0000);
    EXPECT_EQ(fp32_to_fp16(-0x1p-24f), 0x8001);
    EXPECT_EQ(fp32_to_fp16(0x1p-14f - 0x1p-26f), 0x0400);  // rounds up into the smallest normal
    EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(Fp16, OverflowsToInfinityAndKeepsNaN) {
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // halfway to 2^16 ties to the even "infinity"
    EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
    EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()), 0x7e00);
    EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::quiet_NaN()), 0xfe00);
    EXPECT_EQ(fp32_to_fp16(std::bit_cast<float>(0x7f800001u)), 0x7e00);  // any NaN becomes 0x7e00
}

TEST(Bf16, IsTheTopHalfOfAFloat) {
    EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
    EXPECT_EQ(bf16_to_fp32(0xc040), -3.0f);
    EXPECT_EQ(bits_of(bf16_to_fp32(0x0001)), 0x00010000u);
}

TEST(Bf16, RoundsToNearestEvenAndQuietsNaN) {
    EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);  // above the tie
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7f7fffffu)), 0x7f80);  // largest float: infinity
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);  // signalling NaN: quiet
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0xffc12345u)), 0xffc1);
    EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
}

}  // namespace
}  // namespace hearth::quant
