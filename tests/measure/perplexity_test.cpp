#include "measure/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace hearth::measure {
namespace {

// -log softmax against the definition in long double, and for logits whose exponentials
// overflow a double unless the largest is subtracted first.
TEST(Perplexity, NegativeLogLikelihoodIsMinusLogSoftmax) {
    const std::vector<float> logits{1.5f, -2.0f, 0.25f, 3.0f};
    long double sum = 0;
    for (const float l : logits) sum += std::exp(static_cast<long double>(l));
    for (int32_t target = 0; target < 4; ++target) {
        const double expected = static_cast<double>(std::log(sum) - logits[target]);
        EXPECT_NEAR(negative_log_likelihood(logits, target), expected, 1e-12);
    }
    const std::vector<float> huge{1000.0f, 999.0f};
    EXPECT_NEAR(negative_log_likelihood(huge, 1), 1 + std::log1p(std::exp(-1.0)), 1e-12);
    EXPECT_NEAR(negative_log_likelihood(huge, 0), std::log1p(std::exp(-1.0)), 1e-12);
}

}  // namespace
}  // namespace hearth::measure
