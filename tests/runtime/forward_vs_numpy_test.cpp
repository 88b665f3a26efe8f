// hearth's logits against an independent float64 forward pass written in numpy
// (tests/model/reference_forward.py reads the GGUF itself). The F16 tiny test model must agree
// to 1e-3 relative at every position, through both the batched prompt path and token-by-token
// decoding, with the default f16 KV cache.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/run_command.h"
#include "model/test_model.h"
#include "runtime/model_loader.h"
#include "runtime/session.h"

namespace hearth::runtime {
namespace {

namespace fs = std::filesystem;

// A float64 C-order .npy file of two dimensions, as numpy.save writes it.
std::vector<double> read_npy_2d(const fs::path& path, int64_t& rows, int64_t& cols) {
    std::ifstream in(path, std::ios::binary);
    std::string magic(8, '\0');
    in.read(magic.data(), 8);
    if (magic.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error("not an npy file");
    uint32_t header_length = 0;
    if (magic[6] == 1) {
        uint16_t length16 = 0;
        in.read(reinterpret_cast<char*>(&length16), 2);
        header_length = length16;
    } else {
        in.read(reinterpret_cast<char*>(&header_length), 4);
    }
    std::string header(header_length, '\0');
    in.read(header.data(), header_length);
    if (header.find("'<f8'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
        throw std::runtime_error("npy: expected C-order float64, got " + header);
    const size_t shape = header.find("'shape': (");
    if (std::sscanf(header.c_str() + shape, "'shape': (%ld, %ld)", &rows, &cols) != 2)
        throw std::runtime_error("npy: no 2-d shape in " + header);
    std::vector<double> values(rows * cols);
    in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(double)));
    if (!in) throw std::runtime_error("npy: truncated");
    return values;
}

class ForwardVsNumpy : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        directory_ = fs::temp_directory_path() / ("hearth-forward-numpy-" + std::to_string(::getpid()));
        fs::create_directories(directory_);
        model::TestModelOptions options;
        options.preset = model::find_test_model_preset("tiny");
        options.output_scale = 50;  // confident logits, as in the llama.cpp comparison
        model::write_test_model(options, directory_ / "tiny.gguf");
    }
    static void TearDownTestSuite() { fs::remove_all(directory_); }
    static fs::path directory_;
};
fs::path ForwardVsNumpy::directory_;

// Runs hearth on `model_path` and the numpy reference on `reference_path` (the same weights,
// possibly widened to a type the reference reads) over 48 tokens: the first 20 as a prompt in two
// batches, the rest one at a time. Returns the worst relative logit error, after checking each
// position against `tolerance`.
double worst_relative_error(const fs::path& model_path, const fs::path& reference_path, double tolerance) {
    // BOS, then ids spread over the vocabulary (fixed, so the reference is reproducible).
    std::vector<int32_t> tokens{128000};
    for (int i = 1; i < 48; ++i) tokens.push_back(static_cast<int32_t>((i * 2654435761u) % 128000));
    std::string ids;
    for (int32_t t : tokens) ids += (ids.empty() ? "" : ",") + std::to_string(t);

    const fs::path npy = reference_path.parent_path() / (reference_path.stem().string() + "-reference.npy");
    const auto result = hearth::testing::run_command("/usr/bin/python3 " HEARTH_SOURCE_DIR
                                                     "/tests/model/reference_forward.py " +
                                                     reference_path.string() + " --tokens " + ids + " --out " +
                                                     npy.string() + " 2>&1");
    EXPECT_EQ(result.exit_code, 0) << result.output;
    if (result.exit_code != 0) return 1.0;
    int64_t rows = 0, vocab = 0;
    const std::vector<double> reference = read_npy_2d(npy, rows, vocab);
    EXPECT_EQ(rows, static_cast<int64_t>(tokens.size()));

    LoadOptions options;
    options.context_length = 64;
    options.batch_size = 16;  // the first 20 tokens go through two batches (16 + 4)
    options.threads = 2;
    const auto model = LoadedModel::load(model_path, options);
    EXPECT_EQ(model->hparams().vocab_size, vocab);
    Session session(*model);

    auto check_row = [&](std::span<const float> logits, int64_t position) {
        const double* expected = reference.data() + position * vocab;
        double worst = 0, scale = 0;
        for (int64_t i = 0; i < vocab; ++i) {
            worst = std::max(worst, std::abs(logits[i] - expected[i]));
            scale = std::max(scale, std::abs(expected[i]));
        }
        EXPECT_LT(worst / scale, tolerance) << "position " << position << ": max error " << worst << " of " << scale;
        return worst / scale;
    };
    constexpr int64_t kPromptTokens = 20;
    double worst = check_row(session.evaluate(std::span(tokens).first(kPromptTokens)), kPromptTokens - 1);
    for (size_t i = kPromptTokens; i < tokens.size(); ++i)
        worst = std::max(worst, check_row(session.evaluate(std::span(tokens).subspan(i, 1)), static_cast<int64_t>(i)));
    std::printf("%s: worst relative logit error over %zu positions: %.2e\n", model_path.filename().c_str(),
                tokens.size() - kPromptTokens + 1, worst);
    return worst;
}

TEST_F(ForwardVsNumpy, LogitsAgreeToOneInAThousandAtEveryPosition) {
    const fs::path model = directory_ / "tiny.gguf";
    worst_relative_error(model, model, 1e-3);
}

// Quantized files: the reference computes with exactly the weights the file holds (Q8_0 read
// directly; Q4_K_M widened to F32 by `hearth quantize`, whose dequantizer is bit-exact with
// llama.cpp's), so what is left is hearth's rounding of activations to 8 bits before each
// integer dot product (as llama.cpp rounds them): a step of max|x|/127 per block, ~1e-2 of the
// logit range after 2 layers for Q8_0's blocks of 32 (measured 1.4e-2) and about 1.5 times that
// for Q8_K's blocks of 256, whose maximum is taken over 8 times as many values (measured 2.3e-2).
// A wrong scale, nibble or row would be off by the whole logit range.
TEST_F(ForwardVsNumpy, QuantizedLogitsStayCloseToTheirOwnWeights) {
    const std::string hearth = HEARTH_BINARY;
    const fs::path f16 = directory_ / "tiny.gguf", q8_0 = directory_ / "tiny-q8_0.gguf",
                   q4_k_m = directory_ / "tiny-q4_k_m.gguf", q4_k_m_f32 = directory_ / "tiny-q4_k_m-f32.gguf";
    for (const auto& [out, type] : {std::pair{q8_0, "Q8_0"}, std::pair{q4_k_m, "Q4_K_M"}}) {
        ASSERT_EQ(hearth::testing::run_command(hearth + " quantize " + f16.string() + " " + out.string() + " " + type +
                                               " 2>&1")
                      .exit_code,
                  0);
    }
    ASSERT_EQ(hearth::testing::run_command(hearth + " quantize --allow-requantize " + q4_k_m.string() + " " +
                                           q4_k_m_f32.string() + " F32 2>&1")
                  .exit_code,
              0);
    worst_relative_error(q8_0, q8_0, 3e-2);
    worst_relative_error(q4_k_m, q4_k_m_f32, 5e-2);
}

}  // namespace
}  // namespace hearth::runtime
