// Cost of one Sampler::sample on the Llama 3 vocabulary (128,256 logits), with 64 accepted
// tokens in the penalty window. "peaked" logits look like a model's (normal, sigma 2.5, with a
// few tokens 10..18 above the rest); "flat" ones (sigma 1) are top-p's worst case, where the
// 0.9 set holds most of the vocabulary.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "runtime/sampler.h"

namespace {

constexpr int32_t kVocab = 128256;

std::vector<float> bench_logits(float sigma, bool peaked) {
    hearth::SamplerRng rng(2024);
    std::vector<float> logits(kVocab);
    for (float& logit : logits) {
        const double u1 = 1.0 - rng.next_unit();
        const double u2 = rng.next_unit();
        logit = static_cast<float>(sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
    if (peaked) {
        for (int i = 0; i < 8; ++i) {
            logits[rng.next() % kVocab] += 10.0f + static_cast<float>(i);
        }
    }
    return logits;
}

void run(benchmark::State& state, hearth::SamplerParams params, bool peaked) {
    const std::vector<float> logits = peaked ? bench_logits(2.5f, true) : bench_logits(1.0f, false);
    params.seed = 1;
    hearth::Sampler sampler(params, kVocab);
    for (int32_t token = 0; token < 64; ++token) {
        sampler.accept(token * 1999 % kVocab);
    }
    for (auto _ : state) {
        benchmark::DoNotOptimize(sampler.sample(logits));
    }
    state.SetItemsProcessed(state.iterations());
}

hearth::SamplerParams with(float temperature, int32_t top_k, float top_p, float min_p) {
    hearth::SamplerParams params;
    params.temperature = temperature;
    params.top_k = top_k;
    params.top_p = top_p;
    params.min_p = min_p;
    return params;
}

void BM_Greedy(benchmark::State& state) { run(state, with(0.0f, 40, 0.9f, 0.0f), true); }
void BM_OllamaDefaults_TopK40_TopP09(benchmark::State& state) { run(state, hearth::SamplerParams{}, true); }
void BM_TopK40_Flat(benchmark::State& state) { run(state, with(0.8f, 40, 1.0f, 0.0f), false); }
void BM_TopP09_NoTopK_Peaked(benchmark::State& state) { run(state, with(0.8f, 0, 0.9f, 0.0f), true); }
void BM_TopP09_NoTopK_Flat(benchmark::State& state) { run(state, with(0.8f, 0, 0.9f, 0.0f), false); }
void BM_MinP005_NoTopK(benchmark::State& state) { run(state, with(0.8f, 0, 1.0f, 0.05f), true); }
void BM_TemperatureOnly(benchmark::State& state) { run(state, with(0.8f, 0, 1.0f, 0.0f), true); }

BENCHMARK(BM_Greedy);
BENCHMARK(BM_OllamaDefaults_TopK40_TopP09);
BENCHMARK(BM_TopK40_Flat);
BENCHMARK(BM_TopP09_NoTopK_Peaked);
BENCHMARK(BM_TopP09_NoTopK_Flat);
BENCHMARK(BM_MinP005_NoTopK);
BENCHMARK(BM_TemperatureOnly);

}  // namespace

BENCHMARK_MAIN();
