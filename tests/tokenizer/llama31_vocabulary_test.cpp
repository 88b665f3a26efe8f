#include "tokenizer/llama31_vocabulary.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace hearth::tokenizer {
namespace {

nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << path;
    return nlohmann::json::parse(in);
}

// The vocabulary compiled into the binary must be the shared fixture, token for token.
TEST(Llama31Vocabulary, EqualsTheSharedFixture) {
    const Vocabulary vocab = llama31_vocabulary();
    const std::string dir = std::string(HEARTH_SHARED_FIXTURES) + "/llama3.1-tokenizer/";
    const nlohmann::json tokenizer = read_json(dir + "tokenizer.json");
    const nlohmann::json config = read_json(dir + "tokenizer_config.json");

    ASSERT_EQ(vocab.tokens.size(), 128256u);
    for (const auto& [text, id] : tokenizer["model"]["vocab"].items()) {
        ASSERT_EQ(vocab.tokens[id.get<size_t>()], text);
        ASSERT_EQ(vocab.token_types[id.get<size_t>()], TokenType::Normal);
    }
    for (const auto& token : tokenizer["added_tokens"]) {
        const size_t id = token["id"].get<size_t>();
        EXPECT_EQ(vocab.tokens[id], token["content"].get<std::string>());
        EXPECT_EQ(vocab.token_types[id], TokenType::Control);
    }
    const auto& merges = tokenizer["model"]["merges"];
    ASSERT_EQ(vocab.merges.size(), merges.size());
    for (size_t i = 0; i < merges.size(); ++i) ASSERT_EQ(vocab.merges[i], merges[i].get<std::string>());
    EXPECT_EQ(vocab.chat_template, config["chat_template"].get<std::string>());
    EXPECT_EQ(vocab.bos_token_id, 128000);
    EXPECT_EQ(vocab.eos_token_id, 128009);
    EXPECT_EQ(vocab.tokens[128008], "<|eom_id|>");
    EXPECT_EQ(vocab.tokens[128255], "<|reserved_special_token_247|>");
}

}  // namespace
}  // namespace hearth::tokenizer
