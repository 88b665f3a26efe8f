#include "quant/scale_min_k4.h"

#include <gtest/gtest.h>

namespace hearth::quant {
namespace {

TEST(ScaleMinK4, EverySixBitScaleAndMinSurvivesPacking) {
    for (int value = 0; value < 64; ++value) {
        for (int j = 0; j < 8; ++j) {
            // Put `value` in sub-block j and a distinct pattern elsewhere to catch overlaps.
            uint8_t scales[8];
            uint8_t mins[8];
            for (int k = 0; k < 8; ++k) {
                scales[k] = static_cast<uint8_t>(k == j ? value : (7 * k + 3) % 64);
                mins[k] = static_cast<uint8_t>(k == j ? 63 - value : (11 * k + 5) % 64);
            }
            uint8_t packed[kScaleMinBytes];
            pack_scales_mins_k4(scales, mins, packed);
            for (int k = 0; k < 8; ++k) {
                const ScaleMin unpacked = unpack_scale_min_k4(packed, k);
                ASSERT_EQ(unpacked.scale, scales[k]) << "value " << value << ", sub-block " << k;
                ASSERT_EQ(unpacked.min, mins[k]) << "value " << value << ", sub-block " << k;
            }
        }
    }
}

}  // namespace
}  // namespace hearth::quant
