// K-quant matmul on one thread, 4096 x 4096 weights (a Llama 8B attention projection): decoding
// (1 token, reported as GB/s of weight bytes: the speed of light is the core's memory read
// bandwidth) and prompt processing (512 tokens, reported as tokens/s and GMAC/s).
// One such matrix (9-14 MB) stays in a 32 MiB L3 between iterations; the "dram" decode runs
// cycle through 8 copies, so that the weights stream from memory as in a real model.
//   matmul_k_quants_bench --benchmark_filter=Q4_K
//   HEARTH_BENCH_COLS=2048 matmul_k_quants_bench   (4096 x 2048: the 1B model's width)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/thread_pool.h"
#include "quant/quant.h"
#include "quant/types.h"

namespace {

using hearth::cpu::Isa;
using hearth::quant::Type;

const int64_t kRows = 4096;
const int64_t kCols = std::getenv("HEARTH_BENCH_COLS") ? std::atoll(std::getenv("HEARTH_BENCH_COLS")) : 4096;

struct Problem {
    std::vector<uint8_t> weights;
    hearth::cpu::WeightMatrix matrix;
    std::vector<float> x;
};

Problem make_problem(Type type, int64_t tokens, int copies) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    Problem p;
    const size_t row_bytes = *hearth::quant::row_bytes(type, kCols);
    p.weights.resize(copies * kRows * row_bytes);
    std::vector<float> row(kCols);
    for (int64_t r = 0; r < kRows; ++r) {
        for (float& v : row) v = normal(rng);
        hearth::quant::quantize_row(type, row.data(), p.weights.data() + r * row_bytes, kCols);
    }
    for (int c = 1; c < copies; ++c) {
        std::copy_n(p.weights.begin(), kRows * row_bytes, p.weights.begin() + c * kRows * row_bytes);
    }
    p.matrix = {type, p.weights.data(), kRows, kCols, row_bytes};
    p.x.resize(tokens * kCols);
    for (float& v : p.x) v = normal(rng);
    return p;
}

// The weights of every copy in the load-time repacked layout (64-byte aligned).
struct alignas(64) Line {
    uint8_t bytes[64];
};

void run(benchmark::State& state, Type type, Isa isa, int64_t tokens, int copies, bool repack) {
    if (isa > hearth::cpu::best_isa()) {
        state.SkipWithError("ISA not supported here");
        return;
    }
    Problem p = make_problem(type, tokens, copies);
    hearth::cpu::ThreadPool pool(1);
    std::vector<float> y(tokens * kRows);
    std::vector<uint8_t> scratch;
    size_t matrix_bytes = p.weights.size() / copies;
    const uint8_t* weights = p.weights.data();
    std::vector<Line> repacked;
    if (repack) {
        const size_t bytes = hearth::cpu::repacked_bytes(p.matrix, isa);
        if (bytes == 0 || bytes % sizeof(Line) != 0) {
            state.SkipWithError("no repacked layout here");
            return;
        }
        repacked.resize(copies * bytes / sizeof(Line));
        for (int c = 0; c < copies; ++c) {
            hearth::cpu::WeightMatrix copy = p.matrix;
            copy.data = p.weights.data() + c * matrix_bytes;
            hearth::cpu::repack_weights(copy, 0, (kRows + hearth::cpu::kRepackRows - 1) / hearth::cpu::kRepackRows,
                                        reinterpret_cast<uint8_t*>(repacked.data()) + c * bytes, isa);
        }
        matrix_bytes = bytes;
        weights = reinterpret_cast<const uint8_t*>(repacked.data());
        p.matrix.layout = hearth::cpu::WeightLayout::Repacked;
    }
    int copy = 0;
    for (auto _ : state) {
        p.matrix.data = weights + copy * matrix_bytes;
        copy = (copy + 1) % copies;
        hearth::cpu::matmul(pool, p.matrix, p.x.data(), tokens, y.data(), scratch, isa);
        benchmark::DoNotOptimize(y.data());
    }
    const double iterations = static_cast<double>(state.iterations());
    state.counters["GB/s"] = benchmark::Counter(iterations * matrix_bytes / 1e9, benchmark::Counter::kIsRate);
    state.counters["tokens/s"] = benchmark::Counter(iterations * tokens, benchmark::Counter::kIsRate);
    state.counters["GMAC/s"] =
        benchmark::Counter(iterations * tokens * kRows * kCols / 1e9, benchmark::Counter::kIsRate);
}

// Decoding from L3 (one copy) and from memory (8 copies), prompt processing.
struct Case {
    int64_t tokens;
    int copies;
};

void register_all() {
    for (Type type : {Type::Q4_K, Type::Q6_K, Type::Q5_K, Type::Q3_K, Type::Q2_K, Type::IQ4_XS}) {
        for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
            // "avx512-repacked": the layout load_weights gives (Q4_K and Q6_K with VNNI).
            for (const bool repack : {false, true}) {
                if (repack && ((type != Type::Q4_K && type != Type::Q6_K) || isa != Isa::Avx512)) continue;
                for (const Case c : {Case{1, 1}, Case{1, 8}, Case{512, 1}}) {
                    const int64_t tokens = c.tokens;
                    const int copies = c.copies;
                    const std::string name = "matmul/" + std::string(hearth::quant::type_name(type)) + "/" +
                                             std::string(hearth::cpu::isa_name(isa)) + (repack ? "-repacked" : "") +
                                             "/tokens:" + std::to_string(tokens) + (copies > 1 ? "/dram" : "");
                    auto* bench = benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
                        run(state, type, isa, tokens, copies, repack);
                    });
                    bench->Unit(benchmark::kMillisecond)->UseRealTime();
                    if (tokens > 1) bench->Iterations(isa == Isa::Scalar ? 1 : 3);
                }
            }
        }
    }
}

const int kRegistered = (register_all(), 0);

}  // namespace
BENCHMARK_MAIN();
