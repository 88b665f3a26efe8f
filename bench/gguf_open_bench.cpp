// File::open on two files with identical metadata (a 128K-token vocabulary, as a real model
// carries) and tensor tables, one with a 64 MiB and one with an 8 GiB data section. The data
// sections are sparse (ftruncate), so no disk is used. Open time should be the same for both:
// opening parses the header, metadata and tensor table and only maps the data.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "common/error.h"
#include "gguf/gguf.h"

namespace {

using hearth::gguf::File;
using hearth::gguf::Value;

constexpr int kVocabularySize = 128 * 1024;
constexpr int kTensorCount = 256;
constexpr int64_t kRowLength = 4096;  // f32 rows of 16 KiB
constexpr uint64_t kMiB = uint64_t{1} << 20;

// Writes the header with the Writer and extends the file to its full size without data.
std::filesystem::path make_sparse_model(uint64_t data_bytes) {
    hearth::gguf::Writer writer;
    writer.add_metadata("general.architecture", "llama");
    writer.add_metadata("llama.block_count", uint32_t{32});
    writer.add_metadata("llama.context_length", uint32_t{131072});
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> token_types;
    for (int i = 0; i < kVocabularySize; ++i) {
        tokens.push_back("token_" + std::to_string(i));
        scores.push_back(static_cast<float>(-i));
        token_types.push_back(1);
    }
    writer.add_metadata("tokenizer.ggml.tokens", Value::string_array(std::move(tokens)));
    writer.add_metadata("tokenizer.ggml.scores", Value::float_array(scores));
    writer.add_metadata("tokenizer.ggml.token_type", Value::int32_array(token_types));
    const int64_t rows = static_cast<int64_t>(data_bytes / kTensorCount / (kRowLength * sizeof(float)));
    for (int i = 0; i < kTensorCount; ++i) {
        writer.add_tensor({"blk." + std::to_string(i / 8) + ".w" + std::to_string(i % 8),
                           {kRowLength, rows},
                           hearth::quant::Type::F32});
    }
    const std::vector<uint8_t> header = writer.encode_header();

    const auto path =
        std::filesystem::temp_directory_path() /
        ("hearth-open-bench-" + std::to_string(getpid()) + "-" + std::to_string(data_bytes / kMiB) + ".gguf");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::write(fd, header.data(), header.size()) != static_cast<ssize_t>(header.size()) ||
        ::ftruncate(fd, static_cast<off_t>(header.size() + data_bytes)) != 0) {
        hearth::fail("{}: cannot create the benchmark file", path.string());
    }
    ::close(fd);
    return path;
}

// One file per data size, made on first use and removed at exit.
struct Models {
    std::map<uint64_t, std::filesystem::path> paths;
    const std::filesystem::path& get(uint64_t data_bytes) {
        auto it = paths.find(data_bytes);
        if (it == paths.end()) it = paths.emplace(data_bytes, make_sparse_model(data_bytes)).first;
        return it->second;
    }
    ~Models() {
        for (const auto& [size, path] : paths) std::filesystem::remove(path);
    }
};
Models models;

void BM_OpenGguf(benchmark::State& state) {
    const uint64_t data_bytes = static_cast<uint64_t>(state.range(0)) * kMiB;
    const std::filesystem::path& path = models.get(data_bytes);
    uint64_t header_bytes = 0;
    for (auto _ : state) {
        File file = File::open(path);
        header_bytes = file.data_section_offset();
        benchmark::DoNotOptimize(file.tensors().data());
    }
    state.counters["data_MiB"] = static_cast<double>(data_bytes / kMiB);
    state.counters["header_KiB"] = static_cast<double>(header_bytes) / 1024.0;
    state.counters["header_MB/s"] =
        benchmark::Counter(static_cast<double>(header_bytes) * state.iterations(),
                           benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_OpenGguf)->ArgName("data_MiB")->Arg(64)->Arg(8 * 1024)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
