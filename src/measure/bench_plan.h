// What `hearth bench` times: every combination of the values given per flag, as llama-bench
// expands them. A test is a prompt (pp: N tokens in batches) or a decode (tg: N tokens one at a
// time), after `depth` tokens already in the context (not timed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/types.h"

namespace hearth::measure {

enum class BenchKind { Prompt, Decode };

// What needs a model of its own (loaded once for all the tests that share it).
struct BenchConfig {
    int threads = 1;
    quant::Type kv_type = quant::Type::F16;
    int64_t batch_size = 512;
    bool flash_attention = true;  // -fa off: the attention that computes every score first

    bool operator==(const BenchConfig&) const = default;
};

struct BenchTest {
    BenchKind kind = BenchKind::Prompt;
    int64_t tokens = 0;
    int64_t depth = 0;
    BenchConfig config;
    // Decode tests: sequences decoding together, a row each per forward pass (batched decoding,
    // as llama-batched-bench's -npl); tokens and depth are each sequence's.
    int streams = 1;
};

// The values of each flag. A size of 0 skips that kind of test, as in llama-bench.
struct BenchRequest {
    std::vector<int64_t> prompt_sizes{512};
    std::vector<int64_t> generate_sizes{128};
    std::vector<int64_t> depths{0};
    std::vector<int> threads{1};
    std::vector<quant::Type> kv_types{quant::Type::F16};
    std::vector<bool> flash_attention{true};
    std::vector<int> streams{1};  // decode tests only
    int64_t batch_size = 512;
};

// Config by config (threads, then KV type, then flash attention), then depth by depth, prompts before decodes, in
// the order the sizes were given.
std::vector<BenchTest> plan_tests(const BenchRequest& request);

// "pp512", "tg128", "pp512 @ d4096" (llama-bench's names); "tg128 x16" for 16 streams.
std::string test_name(const BenchTest& test);
std::string_view kind_name(BenchKind kind);  // "pp" or "tg"

// Context positions a test needs (each stream's): its depth and its tokens, plus the one token a
// decode test starts from.
int64_t context_needed(const BenchTest& test);

}  // namespace hearth::measure
