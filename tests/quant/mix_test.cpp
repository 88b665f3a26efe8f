#include "quant/mix.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace hearth::quant {
namespace {

struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
};

// Llama 3.1 8B's tensor list, in file order.
std::vector<Tensor> llama_8b_tensors(bool tied = false) {
    std::vector<Tensor> tensors{{"token_embd.weight", {4096, 128256}}, {"rope_freqs.weight", {64}}};
    for (int layer = 0; layer < 32; ++layer) {
        const std::string blk = "blk." + std::to_string(layer) + ".";
        tensors.push_back({blk + "attn_norm.weight", {4096}});
        tensors.push_back({blk + "attn_q.weight", {4096, 4096}});
        tensors.push_back({blk + "attn_k.weight", {4096, 1024}});
        tensors.push_back({blk + "attn_v.weight", {4096, 1024}});
        tensors.push_back({blk + "attn_output.weight", {4096, 4096}});
        tensors.push_back({blk + "ffn_norm.weight", {4096}});
        tensors.push_back({blk + "ffn_gate.weight", {4096, 14336}});
        tensors.push_back({blk + "ffn_up.weight", {4096, 14336}});
        tensors.push_back({blk + "ffn_down.weight", {14336, 4096}});
    }
    tensors.push_back({"output_norm.weight", {4096}});
    if (!tied) tensors.push_back({"output.weight", {4096, 128256}});
    return tensors;
}

std::map<std::string, Type> plan(const char* mix_name, std::vector<Tensor> tensors, bool tied = false) {
    std::sort(tensors.begin(), tensors.end(),
              [](const Tensor& a, const Tensor& b) { return llama_tensor_order_less(a.name, b.name); });
    MixPlanner planner(*find_mix(mix_name), ModelShape{32, 32, 8, 0, !tied, 32});
    std::map<std::string, Type> types;
    for (const Tensor& t : tensors) types[t.name] = planner.choose(t.name, t.shape, Type::F16);
    return types;
}

std::set<int> layers_with(const std::map<std::string, Type>& types, const std::string& suffix, Type type) {
    std::set<int> layers;
    for (int layer = 0; layer < 32; ++layer) {
        if (types.at("blk." + std::to_string(layer) + "." + suffix) == type) layers.insert(layer);
    }
    return layers;
}

// shared/PERFORMANCE.md lists llama.cpp's Q4_K_M mix for Llama 3.1 8B: ffn_down and attn_v at
// Q6_K in layers 0-3, 6, 9, ..., 27 and 28-31, output at Q6_K, everything else 2-D at Q4_K.
TEST(MixTest, Q4KMOnLlama8BMatchesLlamaCppLayerChoice) {
    const auto types = plan("Q4_K_M", llama_8b_tensors());
    const std::set<int> sensitive{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    EXPECT_EQ(layers_with(types, "ffn_down.weight", Type::Q6_K), sensitive);
    EXPECT_EQ(layers_with(types, "attn_v.weight", Type::Q6_K), sensitive);
    EXPECT_EQ(types.at("output.weight"), Type::Q6_K);
    EXPECT_EQ(types.at("token_embd.weight"), Type::Q4_K);
    EXPECT_EQ(types.at("rope_freqs.weight"), Type::F16);  // 1-D: kept as it came (F16 passed in)
    EXPECT_EQ(types.at("blk.7.attn_norm.weight"), Type::F16);
    for (const char* name : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"}) {
        EXPECT_EQ(layers_with(types, std::string(name) + ".weight", Type::Q4_K).size(), 32u) << name;
    }
}

TEST(MixTest, TiedEmbeddingTakesTheOutputRule) {
    const auto types = plan("Q4_K_M", llama_8b_tensors(/*tied=*/true), /*tied=*/true);
    EXPECT_EQ(types.at("token_embd.weight"), Type::Q6_K);
}

TEST(MixTest, Q8AndFloatMixesAreUniform) {
    for (const auto& [name, type] : plan("Q8_0", llama_8b_tensors())) {
        if (name.find("norm") != std::string::npos || name == "rope_freqs.weight") continue;
        EXPECT_EQ(type, Type::Q8_0) << name;
    }
    for (const auto& [name, type] : plan("BF16", llama_8b_tensors())) {
        if (name.find("norm") != std::string::npos || name == "rope_freqs.weight") continue;
        EXPECT_EQ(type, Type::BF16) << name;
    }
}

TEST(MixTest, Q3KMAndQ2KUpgrades) {
    const auto q3 = plan("Q3_K_M", llama_8b_tensors());
    EXPECT_EQ(q3.at("blk.0.attn_v.weight"), Type::Q5_K);
    EXPECT_EQ(q3.at("blk.1.attn_v.weight"), Type::Q5_K);
    EXPECT_EQ(q3.at("blk.2.attn_v.weight"), Type::Q4_K);
    EXPECT_EQ(q3.at("blk.0.ffn_down.weight"), Type::Q5_K);  // layer < 32/16
    EXPECT_EQ(q3.at("blk.5.ffn_down.weight"), Type::Q4_K);
    EXPECT_EQ(q3.at("blk.5.attn_output.weight"), Type::Q4_K);
    EXPECT_EQ(q3.at("blk.5.attn_q.weight"), Type::Q3_K);
    const auto q2 = plan("Q2_K", llama_8b_tensors());
    EXPECT_EQ(q2.at("blk.5.attn_v.weight"), Type::Q4_K);  // GQA 4
    EXPECT_EQ(q2.at("blk.5.ffn_down.weight"), Type::Q3_K);
    EXPECT_EQ(q2.at("blk.5.attn_output.weight"), Type::Q3_K);
    EXPECT_EQ(q2.at("blk.5.ffn_up.weight"), Type::Q2_K);
}

TEST(MixTest, RowsThatDoNotHoldWholeBlocksFallBack) {
    MixPlanner planner(*find_mix("Q4_K_M"), ModelShape{1, 1, 1, 0, true, 0});
    EXPECT_EQ(planner.choose("blk.0.ffn_up.weight", std::vector<int64_t>{4544, 16}, Type::F16), Type::Q5_0);
    EXPECT_EQ(planner.choose("blk.0.ffn_gate.weight", std::vector<int64_t>{100, 16}, Type::F16), Type::F16);
    EXPECT_EQ(planner.fallback_count(), 2);
}

TEST(MixTest, NamesAndAliases) {
    EXPECT_EQ(find_mix("q4_k_m")->file_type, FileType::Q4_K_M);
    EXPECT_EQ(find_mix("Q4_K")->file_type, FileType::Q4_K_M);
    EXPECT_EQ(find_mix("Q5_K")->file_type, FileType::Q5_K_M);
    EXPECT_EQ(find_mix("Q3_K")->file_type, FileType::Q3_K_M);
    EXPECT_EQ(find_mix("nope"), nullptr);
    EXPECT_EQ(file_type_name(15), "Q4_K_M");
    EXPECT_EQ(file_type_name(7), "Q8_0");
    EXPECT_FALSE(file_type_name(999).has_value());
}

TEST(MixTest, LlamaCppTensorOrder) {
    std::vector<std::string> names{"blk.10.attn_q.weight", "output.weight", "blk.2.ffn_up.weight",
                                   "blk.2.attn_k.weight", "token_embd.weight"};
    std::sort(names.begin(), names.end(), llama_tensor_order_less);
    EXPECT_EQ(names, (std::vector<std::string>{"output.weight", "token_embd.weight", "blk.2.attn_k.weight",
                                               "blk.2.ffn_up.weight", "blk.10.attn_q.weight"}));
}

TEST(MixTest, OnlyWeightMatricesAreQuantized) {
    EXPECT_TRUE(tensor_allows_quantization("blk.0.attn_q.weight", std::vector<int64_t>{64, 64}, true));
    EXPECT_FALSE(tensor_allows_quantization("blk.0.attn_norm.weight", std::vector<int64_t>{64, 64}, true));
    EXPECT_FALSE(tensor_allows_quantization("blk.0.attn_q.weight", std::vector<int64_t>{64, 1}, true));
    EXPECT_FALSE(tensor_allows_quantization("blk.0.attn_q.bias", std::vector<int64_t>{64, 64}, true));
    EXPECT_FALSE(tensor_allows_quantization("output.weight", std::vector<int64_t>{64, 64}, false));
}

}  // namespace
}  // namespace hearth::quant
