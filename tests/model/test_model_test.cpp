#include "model/test_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "gguf/gguf.h"
#include "model/hparams.h"
#include "model/quantize_model.h"
#include "quant/quant.h"

namespace hearth::model {
namespace {

namespace fs = std::filesystem;

class TestModelTest : public ::testing::Test {
protected:
    fs::path dir_ = fs::temp_directory_path() / ("hearth-test-model-" + std::to_string(::getpid()));
    void SetUp() override { fs::create_directories(dir_); }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path write(const char* preset, const char* mix, uint64_t seed, double output_scale = 1.0, int threads = 2) {
        TestModelOptions options;
        options.preset = find_test_model_preset(preset);
        options.mix = quant::find_mix(mix);
        options.seed = seed;
        options.output_scale = output_scale;
        options.threads = threads;
        const fs::path path = dir_ / (std::string(preset) + "-" + mix + "-" + std::to_string(seed) + "-" +
                                      std::to_string(threads) + ".gguf");
        write_test_model(options, path);
        return path;
    }
};

std::vector<char> bytes_of(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> tensor_values(const gguf::File& file, const char* name) {
    const gguf::TensorInfo* t = file.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    std::vector<float> values(t->element_count());
    const auto data = file.tensor_data(*t);
    const size_t stride = *quant::row_bytes(t->type, t->row_length());
    for (int64_t r = 0; r < t->row_count(); ++r) {
        quant::dequantize_row(t->type, data.data() + r * stride, values.data() + r * t->row_length(), t->row_length());
    }
    return values;
}

double standard_deviation(const std::vector<float>& v) {
    double sum = 0, squares = 0;
    for (float x : v) {
        sum += x;
        squares += static_cast<double>(x) * x;
    }
    const double mean = sum / v.size();
    return std::sqrt(squares / v.size() - mean * mean);
}

// Llama 3.1 8B has 8,030,261,248 parameters and Llama 3.2 1B 1,235,814,400 (model cards);
// our files add rope_freqs.weight (head_dim / 2 factors).
TEST(TestModelPresets, ParameterCountsAreThoseOfTheRealModels) {
    EXPECT_EQ(test_model_parameter_count(*find_test_model_preset("8b")), 8'030'261'248 + 64);
    EXPECT_EQ(test_model_parameter_count(*find_test_model_preset("1b")), 1'235'814'400 + 32);
}

TEST_F(TestModelTest, TinyHasLlamaMetadataAndRealTokenizer) {
    const gguf::File file = gguf::File::open(write("tiny", "F16", 7));
    const Hparams h = read_hparams(file);
    EXPECT_EQ(h.architecture, "llama");
    EXPECT_EQ(h.layer_count, 2);
    EXPECT_EQ(h.embedding_length, 256);
    EXPECT_EQ(h.head_count, 4);
    EXPECT_EQ(h.head_count_kv, 2);
    EXPECT_EQ(h.context_length, 131072);
    EXPECT_EQ(h.vocab_size, 128256);
    EXPECT_EQ(h.rope_scaling.type, "llama3");
    EXPECT_FALSE(h.tied_output);
    EXPECT_EQ(file.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(file.get_string("tokenizer.ggml.pre"), "llama-bpe");
    const auto& tokens = file.get_array("tokenizer.ggml.tokens").items;
    ASSERT_EQ(tokens.size(), 128256u);
    EXPECT_EQ(*tokens[128000].as_string(), "<|begin_of_text|>");
    EXPECT_EQ(*tokens[128009].as_string(), "<|eot_id|>");
    EXPECT_EQ(*tokens[128010].as_string(), "<|python_tag|>");
    EXPECT_EQ(file.get_array("tokenizer.ggml.merges").items.size(), 280147u);
    EXPECT_EQ(file.get_int("tokenizer.ggml.bos_token_id"), 128000);
    EXPECT_EQ(file.get_int("tokenizer.ggml.eos_token_id"), 128009);
    EXPECT_NE(file.get_string("tokenizer.chat_template").find("<|start_header_id|>"), std::string::npos);
    EXPECT_EQ(file.find_tensor("blk.1.ffn_down.weight")->shape, (std::vector<int64_t>{768, 256}));
    EXPECT_EQ(file.find_tensor("blk.1.attn_k.weight")->shape, (std::vector<int64_t>{256, 128}));
    EXPECT_EQ(file.find_tensor("blk.1.attn_k.weight")->type, quant::Type::F16);
    EXPECT_EQ(file.find_tensor("blk.1.attn_norm.weight")->type, quant::Type::F32);
}

TEST_F(TestModelTest, SameSeedSameBytesWhateverTheThreadCount) {
    const auto one = bytes_of(write("tiny", "Q8_0", 3, 1.0, 1));
    const auto two = bytes_of(write("tiny", "Q8_0", 3, 1.0, 2));
    EXPECT_TRUE(one == two);
    const auto other = bytes_of(write("tiny", "Q8_0", 4, 1.0, 2));
    ASSERT_EQ(one.size(), other.size());
    EXPECT_FALSE(one == other);
}

// A whole model (vocabulary, merges, every tensor) survives read -> write byte for byte.
TEST_F(TestModelTest, ReadThenRewriteGivesTheSameBytes) {
    const fs::path original = write("tiny", "Q8_0", 8);
    const fs::path copy = dir_ / "rewritten.gguf";
    gguf::rewrite(gguf::File::open(original), copy);
    EXPECT_TRUE(bytes_of(original) == bytes_of(copy));
}

TEST_F(TestModelTest, WeightsHaveTheStatedSpread) {
    const gguf::File file = gguf::File::open(write("tiny", "F16", 11, 50.0));
    EXPECT_NEAR(standard_deviation(tensor_values(file, "blk.0.ffn_up.weight")), 0.02, 0.02 * 0.02);
    EXPECT_NEAR(standard_deviation(tensor_values(file, "output.weight")), 1.0, 0.02);
    const auto norm = tensor_values(file, "blk.0.attn_norm.weight");
    EXPECT_NEAR(standard_deviation(norm), 0.1, 0.02);
    for (float x : tensor_values(file, "token_embd.weight")) ASSERT_TRUE(std::isfinite(x));
}

// Llama 3.1's frequency scaling: factor 1 for short wavelengths (the first dimensions), the
// full factor 8 for wavelengths beyond the original 8192 context, smooth in between.
TEST(TestModelRope, Llama3FactorsForThe8BHead) {
    const auto factors = llama3_rope_factors(128, 500000.0, 8.0, 8192);
    ASSERT_EQ(factors.size(), 64u);
    EXPECT_EQ(factors.front(), 1.0f);
    EXPECT_EQ(factors.back(), 8.0f);
    EXPECT_TRUE(std::is_sorted(factors.begin(), factors.end()));
    // Pair 23: wavelength 2π·500000^(46/128) ≈ 700 < 2048: unscaled. Pair 40: ≈ 22,900 > 8192: scaled.
    // Pair 30: ≈ 2,950, between the two: interpolated.
    EXPECT_EQ(factors[23], 1.0f);
    EXPECT_EQ(factors[40], 8.0f);
    EXPECT_GT(factors[30], 1.0f);
    EXPECT_LT(factors[30], 8.0f);
}

TEST_F(TestModelTest, QuantizedTestModelEqualsQuantizingTheF16One) {
    const fs::path f16 = write("tiny", "F16", 5);
    const fs::path direct = write("tiny", "Q4_K_M", 5);
    const fs::path quantized = dir_ / "quantized.gguf";
    QuantizeOptions options;
    options.mix = quant::find_mix("Q4_K_M");
    options.threads = 2;
    quantize_model(f16, quantized, options);
    const gguf::File a = gguf::File::open(direct);
    const gguf::File b = gguf::File::open(quantized);
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (const gguf::TensorInfo& t : a.tensors()) {
        const gguf::TensorInfo* u = b.find_tensor(t.name);
        ASSERT_NE(u, nullptr) << t.name;
        EXPECT_EQ(t.type, u->type) << t.name;
        const auto x = a.tensor_data(t);
        const auto y = b.tensor_data(*u);
        EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << t.name;
    }
    // Tiny has 2 layers: use_more_bits picks layer 1 (>= 7·2/8) for Q6_K, layer 0 stays Q4_K.
    EXPECT_EQ(b.find_tensor("blk.1.ffn_down.weight")->type, quant::Type::Q6_K);
    EXPECT_EQ(b.find_tensor("blk.0.ffn_down.weight")->type, quant::Type::Q4_K);
    EXPECT_EQ(b.find_tensor("output.weight")->type, quant::Type::Q6_K);
    EXPECT_EQ(b.get_int("general.file_type"), 15);
    EXPECT_EQ(b.metadata().back().key, "general.file_type");
}

}  // namespace
}  // namespace hearth::model
