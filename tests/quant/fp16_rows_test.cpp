#include "quant/fp16_rows.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "quant/fp16.h"

namespace hearth::quant {
namespace {

// Every half value, widened by the fast row path, equals the scalar reference bit for bit.
TEST(Fp16Rows, WideningEveryHalfMatchesTheReference) {
    std::vector<uint16_t> halves(65536);
    for (uint32_t h = 0; h < 65536; ++h) halves[h] = static_cast<uint16_t>(h);
    std::vector<float> fast(65536, std::numeric_limits<float>::quiet_NaN());
    fp16_to_fp32_row(halves.data(), fast.data(), 65536);
    for (uint32_t h = 0; h < 65536; ++h) {
        ASSERT_EQ(std::bit_cast<uint32_t>(fast[h]), std::bit_cast<uint32_t>(fp16_to_fp32(halves[h]))) << "half " << h;
    }
}

// Narrowing: random bit patterns (every exponent, NaNs with payloads, infinities, subnormals,
// exact ties) in rows whose length is not a multiple of the SIMD width.
TEST(Fp16Rows, NarrowingMatchesTheReferenceOnEveryKindOfFloat) {
    std::mt19937 generator(20261125);
    std::vector<float> values;
    for (int i = 0; i < 200000; ++i) values.push_back(std::bit_cast<float>(static_cast<uint32_t>(generator())));
    for (float special : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 5.9604645e-8f, 2.9802322e-8f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), 1.00048828125f /* tie */}) {
        values.push_back(special);
    }
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (int i = 0; i < 100001; ++i) values.push_back(normal(generator));
    std::vector<uint16_t> fast(values.size(), 0xABCD);
    fp32_to_fp16_row(values.data(), fast.data(), static_cast<int64_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) {
        ASSERT_EQ(fast[i], fp32_to_fp16(values[i])) << "value bits " << std::bit_cast<uint32_t>(values[i]);
    }
}

}  // namespace
}  // namespace hearth::quant
