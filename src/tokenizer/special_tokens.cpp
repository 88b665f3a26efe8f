#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace hearth::tokenizer {

int32_t SpecialTokenMatcher::child(int32_t node, uint8_t byte) const {
    const auto& children = nodes_[node].children;
    const auto it =
        std::lower_bound(children.begin(), children.end(), byte,
                         [](const std::pair<uint8_t, int32_t>& c, uint8_t b) { return c.first < b; });
    return it != children.end() && it->first == byte ? it->second : -1;
}

void SpecialTokenMatcher::add(std::string_view text, int32_t id, bool is_control) {
    if (text.empty()) return;  // an empty token can never be found in text
    int32_t node = 0;
    for (const char c : text) {
        const auto byte = static_cast<uint8_t>(c);
        int32_t next = child(node, byte);
        if (next < 0) {
            next = static_cast<int32_t>(nodes_.size());
            nodes_.emplace_back();
            auto& children = nodes_[node].children;
            children.insert(
                std::upper_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1})),
                {byte, next});
        }
        node = next;
    }
    if (nodes_[node].token_id >= 0) return;  // two ids with one text: the first wins
    nodes_[node].token_id = id;
    nodes_[node].is_control = is_control;
    const auto first = static_cast<uint8_t>(text[0]);
    starts_any_[first] = true;
    if (!is_control) starts_user_defined_[first] = true;
}

size_t SpecialTokenMatcher::longest_at(std::string_view text, size_t pos, bool match_control,
                                       int32_t* id) const {
    size_t best = 0;
    int32_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
        node = child(node, static_cast<uint8_t>(text[i]));
        if (node < 0) break;
        const Node& n = nodes_[node];
        if (n.token_id >= 0 && (match_control || !n.is_control)) {
            best = i + 1 - pos;
            *id = n.token_id;
        }
    }
    return best;
}

std::optional<SpecialTokenMatcher::Match> SpecialTokenMatcher::find(std::string_view text, size_t from,
                                                                    bool match_control) const {
    const bool* starts = match_control ? starts_any_ : starts_user_defined_;
    for (size_t pos = from; pos < text.size(); ++pos) {
        if (!starts[static_cast<uint8_t>(text[pos])]) continue;
        int32_t id = -1;
        if (const size_t length = longest_at(text, pos, match_control, &id)) return Match{pos, length, id};
    }
    return std::nullopt;
}

}  // namespace hearth::tokenizer
