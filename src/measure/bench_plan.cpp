#include "measure/bench_plan.h"

#include <fmt/format.h>

namespace hearth::measure {

std::vector<BenchTest> plan_tests(const BenchRequest& request) {
    std::vector<BenchTest> tests;
    for (const int threads : request.threads) {
        for (const quant::Type kv_type : request.kv_types) {
            for (const bool flash_attention : request.flash_attention) {
                const BenchConfig config{threads, kv_type, request.batch_size, flash_attention};
                for (const int64_t depth : request.depths) {
                    for (const int64_t size : request.prompt_sizes)
                        if (size > 0) tests.push_back({BenchKind::Prompt, size, depth, config});
                    for (const int64_t size : request.generate_sizes)
                        for (const int streams : request.streams)
                            if (size > 0) tests.push_back({BenchKind::Decode, size, depth, config, streams});
                }
            }
        }
    }
    return tests;
}

std::string_view kind_name(BenchKind kind) { return kind == BenchKind::Prompt ? "pp" : "tg"; }

std::string test_name(const BenchTest& test) {
    std::string name = fmt::format("{}{}", kind_name(test.kind), test.tokens);
    if (test.streams > 1) name += fmt::format(" x{}", test.streams);
    if (test.depth > 0) name += fmt::format(" @ d{}", test.depth);
    return name;
}

int64_t context_needed(const BenchTest& test) {
    return test.depth + test.tokens + (test.kind == BenchKind::Decode ? 1 : 0);
}

}  // namespace hearth::measure
