// matmul speed on a 4096 x 4096 weight matrix (a Llama-8B attention projection) at the best ISA.
//  decode/<type>/threads:N   one token: bytes of weights streamed per second, to hold against
//                            the memory bandwidth (every weight is read once per token)
//  prompt/<type>/threads:N   512 tokens: tokens per second (items), bounded by arithmetic since
//                            each weight block is reused across tokens
#include <benchmark/benchmark.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/matmul.h"
#include "quant/quant.h"

namespace {

using hearth::cpu::ThreadPool;
using hearth::cpu::WeightMatrix;
using hearth::quant::Type;

constexpr int64_t kRows = 4096;
constexpr int64_t kCols = 4096;
constexpr int64_t kPromptTokens = 512;

constexpr Type kTypes[] = {Type::Q4_K, Type::Q6_K, Type::Q8_0, Type::Q4_0, Type::Q5_0,
                           Type::IQ4_NL, Type::F16, Type::BF16, Type::F32};

// Quantizing 16M values takes seconds for some types: each matrix is made once.
const std::vector<uint8_t>& weights_of(Type type) {
    static std::map<Type, std::vector<uint8_t>> matrices;
    auto [it, inserted] = matrices.try_emplace(type);
    if (inserted) {
        const size_t row_bytes = *hearth::quant::row_bytes(type, kCols);
        it->second.resize(kRows * row_bytes);
        std::mt19937 generator(20260311);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        std::vector<float> row(kCols);
        for (int64_t r = 0; r < kRows; ++r) {
            for (float& v : row) v = normal(generator);
            hearth::quant::quantize_row(type, row.data(), it->second.data() + r * row_bytes, kCols);
        }
    }
    return it->second;
}

void run_matmul(benchmark::State& state, Type type, int64_t tokens) {
    const std::vector<uint8_t>& bytes = weights_of(type);
    const WeightMatrix w{type, bytes.data(), kRows, kCols, bytes.size() / kRows};
    ThreadPool pool(static_cast<int>(state.range(0)));
    std::vector<float> x(tokens * kCols);
    std::mt19937 generator(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : x) v = normal(generator);
    std::vector<float> y(tokens * kRows);
    std::vector<uint8_t> scratch;
    for (auto _ : state) {
        hearth::cpu::matmul(pool, w, x.data(), tokens, y.data(), scratch);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.counters["isa"] = static_cast<double>(hearth::cpu::best_isa());
    if (tokens == 1) {
        state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes.size()));
    } else {
        state.SetItemsProcessed(state.iterations() * tokens);  // tokens per second
    }
}

}  // namespace

int main(int argc, char** argv) {
    for (const Type type : kTypes) {
        const std::string name(hearth::quant::type_name(type));
        benchmark::RegisterBenchmark(("decode/" + name).c_str(), run_matmul, type, int64_t{1})
            ->ArgName("threads")
            ->Arg(1)
            ->Arg(2)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("prompt/" + name).c_str(), run_matmul, type, kPromptTokens)
            ->ArgName("threads")
            ->Arg(1)
            ->Arg(2)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
