#include "quant/iq4_grid.h"

#include <gtest/gtest.h>

#include <cmath>

namespace hearth::quant {
namespace {

// Brute force: the nearest level; on a tie, the upper of the two.
int nearest_level_by_scan(float x) {
    int best = 0;
    for (int i = 1; i < 16; ++i) {
        if (std::fabs(x - kIq4Grid[i]) <= std::fabs(x - kIq4Grid[best])) best = i;
    }
    return best;
}

TEST(Iq4Grid, NearestLevelAgreesWithAScan) {
    for (float x = -140.0f; x <= 130.0f; x += 0.25f) {
        ASSERT_EQ(nearest_iq4_level(x), nearest_level_by_scan(x)) << x;
    }
}

TEST(Iq4Grid, TiesGoToTheUpperLevel) {
    EXPECT_EQ(nearest_iq4_level(-4.5f), 8);  // halfway between -10 and 1
    EXPECT_EQ(nearest_iq4_level(7.0f), 9);   // halfway between 1 and 13
}

TEST(Iq4Grid, AllZeroBlockHasScaleZero) {
    const float zeros[32] = {};
    EXPECT_EQ(search_iq4_block_scale(zeros), 0.0f);
}

TEST(Iq4Grid, BlockOnTheGridIsFoundExactly) {
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = 0.5f * kIq4Grid[(5 * j) % 16];
    EXPECT_FLOAT_EQ(std::fabs(search_iq4_block_scale(x)), 0.5f);
}

}  // namespace
}  // namespace hearth::quant
