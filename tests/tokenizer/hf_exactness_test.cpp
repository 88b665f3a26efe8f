// Token ids equal Hugging Face tokenizers' on a seeded corpus of 5,000+ texts (mixed scripts,
// emoji, combining marks, code, numbers, whitespace runs, contractions, special-token text,
// ill-formed UTF-8, 100 KB runs without a space), for Llama 3.1 and Qwen3. The reference ids
// come from tests/compat/tokenizer_hf_reference.mjs, run here through node.
#include <cstdlib>

#include <fmt/ranges.h>

#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace hearth::tokenizer {
namespace {

using testing::from_hex;

struct ReferenceCase {
    std::string text;
    std::vector<int32_t> ids;
    std::string decoded;  // HF's decode of the ids (lossy UTF-8)
};

std::vector<ReferenceCase> hf_reference(const std::string& tokenizer_json, const std::string& variant) {
    const std::filesystem::path out = testing::temp_dir() / fmt::format("hf-{}.json", variant);
    const std::string command = fmt::format("node '{}/tests/compat/tokenizer_hf_reference.mjs' '{}' {} '{}'",
                                            HEARTH_SOURCE_DIR, tokenizer_json, variant, out.string());
    const int status = std::system(command.c_str());
    if (status != 0) throw std::runtime_error(fmt::format("'{}' exited with status {}", command, status));
    const nlohmann::json json = nlohmann::json::parse(testing::read_file(out));
    std::filesystem::remove(out);
    std::vector<ReferenceCase> cases;
    for (const auto& c : json.at("cases")) {
        cases.push_back({from_hex(c.at("hex").get<std::string>()), c.at("ids").get<std::vector<int32_t>>(),
                         from_hex(c.at("decoded_hex").get<std::string>())});
    }
    return cases;
}

std::string describe(const ReferenceCase& c, const std::vector<int32_t>& got) {
    const std::string shown = c.text.size() > 300 ? c.text.substr(0, 300) + "..." : c.text;
    return fmt::format("text (hex {}): {}\n  HF:     {}\n  hearth: {}", testing::to_hex(shown.substr(0, 120)),
                       shown, fmt::join(c.ids, " "), fmt::join(got, " "));
}

void expect_same_ids(const Tokenizer& tokenizer, const std::vector<ReferenceCase>& cases,
                     bool parse_special) {
    ASSERT_GE(cases.size(), 5000u);
    size_t mismatches = 0;
    for (const ReferenceCase& c : cases) {
        const std::vector<int32_t> got =
            tokenizer.encode(c.text, {.add_bos = false, .parse_special = parse_special});
        if (got == c.ids) continue;
        if (++mismatches <= 5) ADD_FAILURE() << describe(c, got);
    }
    EXPECT_EQ(mismatches, 0u) << "of " << cases.size() << " texts";
}

// HF's decode is lossy UTF-8 of the same bytes hearth's decode gives exactly.
void expect_same_decoding(const Tokenizer& tokenizer, const std::vector<ReferenceCase>& cases) {
    size_t mismatches = 0;
    for (const ReferenceCase& c : cases) {
        if (repair_utf8(tokenizer.decode(c.ids)) == c.decoded) continue;
        if (++mismatches <= 5) ADD_FAILURE() << "decoding " << fmt::format("{}", fmt::join(c.ids, " "));
    }
    EXPECT_EQ(mismatches, 0u) << "of " << cases.size() << " texts";
}

TEST(HfExactness, Llama3) {
    const auto cases = hf_reference(testing::llama3_tokenizer_json_path(), "plain");
    expect_same_ids(testing::llama3_tokenizer(), cases, true);
    expect_same_decoding(testing::llama3_tokenizer(), cases);
}

TEST(HfExactness, Llama3WithSpecialTokensAsText) {
    const auto cases = hf_reference(testing::llama3_tokenizer_json_path(), "split-special");
    expect_same_ids(testing::llama3_tokenizer(), cases, false);
}

TEST(HfExactness, Gpt2PreTokenizerOnLlama3Vocabulary) {
    Vocabulary vocab = llama31_vocabulary();
    vocab.pre = "gpt-2";
    const Tokenizer tokenizer = testing::tokenizer_via_gguf(vocab, "gpt2-pre-vocab.gguf");
    const auto cases = hf_reference(testing::llama3_tokenizer_json_path(), "gpt2");
    expect_same_ids(tokenizer, cases, true);
}

TEST(HfExactness, Qwen3) {
    const auto cases = hf_reference(testing::qwen3_tokenizer_json_path(), "plain");
    expect_same_ids(testing::qwen3_tokenizer(), cases, true);
    expect_same_decoding(testing::qwen3_tokenizer(), cases);
}

TEST(HfExactness, Qwen3WithSpecialTokensAsText) {
    const auto cases = hf_reference(testing::qwen3_tokenizer_json_path(), "split-special");
    expect_same_ids(testing::qwen3_tokenizer(), cases, false);
}

}  // namespace
}  // namespace hearth::tokenizer
