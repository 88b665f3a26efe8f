// A model split over two backends (-ngl: the first layers on one, the rest and the output layer
// on another) computes exactly what it computes on one: here both backends are CPU backends with
// the same kernels, so every logit must be bit-identical, over a prompt and single-token steps.
// What is under test is the splitting itself: the weights each backend gets, the cache's parts
// and their layer numbering, the hidden state crossing between backends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "gguf/gguf.h"
#include "model/llama.h"
#include "model/test_model.h"
#include "quant/mix.h"

namespace hearth::model {
namespace {

namespace fs = std::filesystem;

// Logits after a prompt of 9 tokens, then after each of 6 greedy single-token steps.
std::vector<std::vector<float>> run(const Llama& llama) {
    auto cache = llama.create_kv_cache(64, quant::Type::F16);
    LlamaWorkspace workspace = llama.make_workspace(16);
    std::vector<float> logits(llama.hparams().vocab_size);
    std::vector<std::vector<float>> steps;
    std::vector<int32_t> tokens{128000, 791, 4062, 14198, 39935, 35308, 927, 279, 16053};
    int64_t position = 0;
    for (int step = 0; step < 7; ++step) {
        llama.forward(workspace, *cache, tokens, position, logits);
        position += static_cast<int64_t>(tokens.size());
        steps.push_back(logits);
        tokens = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
    }
    return steps;
}

TEST(SplitModel, TwoBackendsComputeWhatOneDoes) {
    const fs::path dir = fs::temp_directory_path() / ("hearth-split-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (const char* mix : {"F16", "Q4_K_M"}) {
        TestModelOptions options;
        options.preset = find_test_model_preset("tiny");  // 2 layers
        options.mix = quant::find_mix(mix);
        options.output_scale = 20;
        const fs::path path = dir / (std::string(mix) + ".gguf");
        write_test_model(options, path);
        const gguf::File file = gguf::File::open(path);

        cpu::CpuBackend whole_backend(1);
        const Llama whole(file, whole_backend);
        cpu::CpuBackend last_layers(1), first_layers(1);
        const Llama split(file, last_layers, &first_layers, 1);
        ASSERT_EQ(split.backends().size(), 2u);
        EXPECT_EQ(&split.layer_backend(0), &first_layers);
        EXPECT_EQ(&split.layer_backend(1), &last_layers);
        EXPECT_EQ(split.weight_bytes_read_per_token(), whole.weight_bytes_read_per_token());

        const auto expected = run(whole), got = run(split);
        ASSERT_EQ(expected.size(), got.size());
        for (size_t step = 0; step < expected.size(); ++step)
            EXPECT_EQ(expected[step], got[step]) << mix << ": logits differ at step " << step;
    }
    fs::remove_all(dir);
}

// -ngl of 0 or of every layer is no split.
TEST(SplitModel, NoSplitAtTheEnds) {
    const fs::path dir = fs::temp_directory_path() / ("hearth-split-ends-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    TestModelOptions options;
    options.preset = find_test_model_preset("tiny");
    write_test_model(options, dir / "tiny.gguf");
    const gguf::File file = gguf::File::open(dir / "tiny.gguf");
    for (const int64_t first : {0, 2, 5}) {
        cpu::CpuBackend main_backend(1), other(1);
        const Llama llama(file, main_backend, &other, first);
        EXPECT_EQ(llama.backends().size(), 1u) << first;
        EXPECT_EQ(&llama.layer_backend(0), &main_backend) << first;
    }
    fs::remove_all(dir);
}

}  // namespace
}  // namespace hearth::model
