#include "measure/bench_plan.h"

#include <gtest/gtest.h>

namespace hearth::measure {
namespace {

TEST(BenchPlan, EveryCombinationInConfigThenDepthThenKindOrder) {
    BenchRequest request;
    request.prompt_sizes = {64, 0, 512};  // 0 skips, as in llama-bench
    request.generate_sizes = {128};
    request.depths = {0, 4096};
    request.threads = {1, 2};
    request.kv_types = {quant::Type::F16, quant::Type::Q8_0};
    const std::vector<BenchTest> tests = plan_tests(request);
    ASSERT_EQ(tests.size(), 2u * 2 * 2 * 3);
    std::vector<std::string> first_config;
    for (size_t i = 0; i < 6; ++i) {
        EXPECT_EQ(tests[i].config.threads, 1);
        EXPECT_EQ(tests[i].config.kv_type, quant::Type::F16);
        first_config.push_back(test_name(tests[i]));
    }
    EXPECT_EQ(first_config, (std::vector<std::string>{"pp64", "pp512", "tg128", "pp64 @ d4096", "pp512 @ d4096",
                                                      "tg128 @ d4096"}));
    EXPECT_EQ(tests[6].config.kv_type, quant::Type::Q8_0);
    EXPECT_EQ(tests[12].config.threads, 2);
    EXPECT_EQ(tests.back().config.threads, 2);
    EXPECT_EQ(tests.back().config.kv_type, quant::Type::Q8_0);
}

TEST(BenchPlan, OnlyZeroSizesGiveNoTests) {
    BenchRequest request;
    request.prompt_sizes = {0};
    request.generate_sizes = {0};
    EXPECT_TRUE(plan_tests(request).empty());
}

TEST(BenchPlan, ContextCountsDepthTokensAndTheDecodeStartToken) {
    EXPECT_EQ(context_needed({BenchKind::Prompt, 512, 4096, {}}), 4608);
    EXPECT_EQ(context_needed({BenchKind::Decode, 128, 4096, {}}), 4225);
    EXPECT_EQ(context_needed({BenchKind::Decode, 128, 0, {}}), 129);
}

}  // namespace
}  // namespace hearth::measure
