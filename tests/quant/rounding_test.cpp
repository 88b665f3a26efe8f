#include "quant/rounding.h"

#include <gtest/gtest.h>

#include <cmath>

namespace hearth::quant {
namespace {

TEST(NearestInt, RoundsHalvesToEven) {
    EXPECT_EQ(nearest_int(0.5f), 0);
    EXPECT_EQ(nearest_int(1.5f), 2);
    EXPECT_EQ(nearest_int(2.5f), 2);
    EXPECT_EQ(nearest_int(-0.5f), 0);
    EXPECT_EQ(nearest_int(-1.5f), -2);
    EXPECT_EQ(nearest_int(-2.5f), -2);
}

TEST(NearestInt, AgreesWithNearbyintOverItsRange) {
    for (float value = -4194303.0f; value <= 4194303.0f; value += 1234.567f) {
        ASSERT_EQ(nearest_int(value), static_cast<int>(std::nearbyint(value))) << value;
    }
    EXPECT_EQ(nearest_int(4194303.0f), 4194303);
    EXPECT_EQ(nearest_int(-4194303.0f), -4194303);
    EXPECT_EQ(nearest_int(0.49999997f), 0);
    EXPECT_EQ(nearest_int(-7.6f), -8);
}

}  // namespace
}  // namespace hearth::quant
