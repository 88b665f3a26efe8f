// Finding special tokens in text before pre-tokenizing, as Hugging Face's AddedVocabulary does:
// leftmost-longest matching of the tokens' literal text. Control tokens (HF's "special" added
// tokens, e.g. <|eot_id|>) match only when the caller asks for it; user-defined tokens (HF's
// non-special added tokens, e.g. Qwen3's <think>) always match, as in HF and llama.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace hearth::tokenizer {

class SpecialTokenMatcher {
  public:
    void add(std::string_view text, int32_t id, bool is_control);

    struct Match {
        size_t start = 0;
        size_t length = 0;
        int32_t id = -1;
    };
    // The leftmost, then longest, token occurring in text[from, ...).
    std::optional<Match> find(std::string_view text, size_t from, bool match_control) const;

  private:
    struct Node {
        std::vector<std::pair<uint8_t, int32_t>> children;  // byte → node index, sorted
        int32_t token_id = -1;
        bool is_control = false;
    };
    int32_t child(int32_t node, uint8_t byte) const;
    size_t longest_at(std::string_view text, size_t pos, bool match_control, int32_t* id) const;

    std::vector<Node> nodes_{Node{}};  // nodes_[0] is the root
    bool starts_any_[256] = {};
    bool starts_user_defined_[256] = {};
};

}  // namespace hearth::tokenizer
