// Dequantization throughput of the scalar reference per tensor type, in bytes of f32 output
// per second, over rows making 16 MiB of output (larger than the last-level cache of most
// machines, so the number includes streaming the quantized input from memory).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "quant/quant.h"

namespace {

using hearth::quant::Type;

constexpr int64_t kRowLength = 4096;
constexpr int64_t kOutputBytes = int64_t{16} << 20;
constexpr int64_t kRows = kOutputBytes / (kRowLength * static_cast<int64_t>(sizeof(float)));

constexpr Type kTypes[] = {Type::F32,  Type::F16,  Type::BF16,   Type::Q4_0,   Type::Q4_1, Type::Q5_0,
                           Type::Q5_1, Type::Q8_0, Type::Q2_K,   Type::Q3_K,   Type::Q4_K, Type::Q5_K,
                           Type::Q6_K, Type::Q8_K, Type::IQ4_NL, Type::IQ4_XS, Type::MXFP4};

void dequantize_rows(benchmark::State& state, Type type) {
    const size_t row_bytes = *hearth::quant::row_bytes(type, kRowLength);
    std::vector<uint8_t> quantized(kRows * row_bytes);
    {
        std::mt19937 generator(20261125);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        std::vector<float> row(kRowLength);
        for (int64_t r = 0; r < kRows; ++r) {
            for (float& value : row) value = normal(generator);
            hearth::quant::quantize_row(type, row.data(), quantized.data() + r * row_bytes, kRowLength);
        }
    }
    std::vector<float> output(kRows * kRowLength);
    for (auto _ : state) {
        for (int64_t r = 0; r < kRows; ++r) {
            hearth::quant::dequantize_row(type, quantized.data() + r * row_bytes,
                                          output.data() + r * kRowLength, kRowLength);
        }
        benchmark::DoNotOptimize(output.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * kOutputBytes);
    state.counters["in_bytes_per_value"] = static_cast<double>(row_bytes) / kRowLength;
}

}  // namespace

int main(int argc, char** argv) {
    for (const Type type : kTypes) {
        const std::string name = "dequantize/" + std::string(hearth::quant::type_name(type));
        benchmark::RegisterBenchmark(name.c_str(), dequantize_rows, type)->Unit(benchmark::kMillisecond);
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
