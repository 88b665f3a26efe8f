#include "tokenizer/tokenizer.h"

#include <unordered_map>

#include "common/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

// Pieces longer than this are encoded every time: long pieces rarely repeat, and caching them
// would cost memory, not time.
constexpr size_t kMaxCachedPieceBytes = 64;
// The per-call cache of piece → ids is dropped when it holds this many pieces.
constexpr size_t kMaxCachedPieces = 1 << 17;

// Lets the piece cache be searched with a string_view, without building a std::string.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct PreTokenizerName {
    std::string_view name;
    PreTokenizer kind;
};

// tokenizer.ggml.pre values, as llama.cpp's convert_hf_to_gguf.py names them.
constexpr PreTokenizerName kPreTokenizers[] = {
    {"llama-bpe", PreTokenizer::Llama3}, {"llama3", PreTokenizer::Llama3}, {"llama-v3", PreTokenizer::Llama3},
    {"qwen2", PreTokenizer::Qwen2},      {"gpt-2", PreTokenizer::Gpt2},
};

PreTokenizer find_pre_tokenizer(const Vocabulary& vocab, const std::string& source) {
    for (const auto& [name, kind] : kPreTokenizers) {
        if (vocab.pre == name) return kind;
    }
    fail("{}: tokenizer.ggml.pre '{}' is not supported (hearth knows llama-bpe, qwen2 and gpt-2)", source,
         vocab.pre);
}

bool is_special(TokenType type) {
    return type == TokenType::Control || type == TokenType::UserDefined;
}

// Tokens BPE may produce: not the special ones (HF's added tokens) nor padding.
bool is_ordinary(TokenType type) {
    return !is_special(type) && type != TokenType::Unused;
}

}  // namespace

struct Tokenizer::State {
    std::string source;
    PreTokenizer pre = PreTokenizer::Llama3;
    // HF's BPE option ignore_merges: a piece that is itself a token is that token. On for
    // Llama 3 (its tokenizer.json says so; llama.cpp ties it to the pre-tokenizer too).
    bool ignore_merges = false;
    bool normalize_nfc = false;  // Qwen2/3's tokenizer.json normalizer is NFC
    std::vector<std::string> texts;
    std::vector<TokenType> types;
    std::vector<std::string> bytes;                              // what each token decodes to
    std::unordered_map<std::string_view, int32_t> ids_by_bytes;  // ordinary tokens; keys view `bytes`
    std::array<int32_t, 256> byte_ids{};
    MergeTable merges;
    SpecialTokenMatcher specials;
    int32_t bos = -1;
    int32_t eos = -1;
    bool add_bos = false;

    void check_id(int32_t id, std::string_view what) const {
        if (id < -1 || id >= static_cast<int64_t>(texts.size())) {
            fail("{}: {} {} is out of range (the vocabulary has {} tokens)", source, what, id, texts.size());
        }
    }
    void build_tokens();
    void build_byte_ids();
    void build_merges(const std::vector<std::string>& merge_rules);
};

void Tokenizer::State::build_tokens() {
    bytes.resize(texts.size());
    ids_by_bytes.reserve(texts.size());
    for (size_t id = 0; id < texts.size(); ++id) {
        const auto token_id = static_cast<int32_t>(id);
        if (is_special(types[id])) {
            bytes[id] = texts[id];
            specials.add(texts[id], token_id, types[id] == TokenType::Control);
            continue;
        }
        bytes[id] = token_text_to_bytes(texts[id]).value_or(texts[id]);
    }
    for (size_t id = 0; id < texts.size(); ++id) {
        if (is_ordinary(types[id])) ids_by_bytes.emplace(bytes[id], static_cast<int32_t>(id));
    }
}

void Tokenizer::State::build_byte_ids() {
    for (int byte = 0; byte < 256; ++byte) {
        const char c = static_cast<char>(byte);
        const auto it = ids_by_bytes.find(std::string_view(&c, 1));
        if (it == ids_by_bytes.end()) {
            fail("{}: the vocabulary has no token for byte 0x{:02X} (byte-level BPE needs all 256)", source,
                 byte);
        }
        byte_ids[byte] = it->second;
    }
}

void Tokenizer::State::build_merges(const std::vector<std::string>& merge_rules) {
    if (merge_rules.empty())
        fail("{}: tokenizer.ggml.merges is empty (byte-level BPE needs its merge rules)", source);
    if (merge_rules.size() > INT32_MAX) fail("{}: {} merges is too many", source, merge_rules.size());
    std::unordered_map<std::string_view, int32_t> ids_by_text;  // merges spell tokens as the vocabulary does
    ids_by_text.reserve(texts.size());
    for (size_t id = 0; id < texts.size(); ++id) {
        if (is_ordinary(types[id])) ids_by_text.emplace(texts[id], static_cast<int32_t>(id));
    }
    const auto id_of = [&](std::string_view text, size_t rank, std::string_view rule, std::string_view role) {
        const auto it = ids_by_text.find(text);
        if (it == ids_by_text.end())
            fail("{}: merge {} '{}' names {} '{}', which is not in the vocabulary", source, rank, rule, role,
                 text);
        return it->second;
    };
    merges.reserve(merge_rules.size());
    std::string joined;
    for (size_t rank = 0; rank < merge_rules.size(); ++rank) {
        const std::string_view rule = merge_rules[rank];
        const size_t space = rule.find(' ');
        if (space == std::string_view::npos || space == 0 || space + 1 == rule.size()) {
            fail("{}: merge {} '{}' is not two tokens separated by a space", source, rank, rule);
        }
        const std::string_view left = rule.substr(0, space);
        const std::string_view right = rule.substr(space + 1);
        joined.assign(left).append(right);
        const int32_t left_id = id_of(left, rank, rule, "the token");
        const int32_t right_id = id_of(right, rank, rule, "the token");
        const int32_t result = id_of(joined, rank, rule, "the result");
        merges.insert(left_id, right_id, {static_cast<int32_t>(rank), result});
    }
}

Tokenizer::Tokenizer(const Vocabulary& vocab, std::string source) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.source = std::move(source);
    if (vocab.model != "gpt2") {
        fail("{}: tokenizer.ggml.model '{}' is not supported (hearth reads byte-level BPE, 'gpt2')", s.source,
             vocab.model);
    }
    s.pre = find_pre_tokenizer(vocab, s.source);
    s.ignore_merges = s.pre == PreTokenizer::Llama3;
    s.normalize_nfc = s.pre == PreTokenizer::Qwen2;
    if (vocab.tokens.empty()) fail("{}: tokenizer.ggml.tokens is empty", s.source);
    if (vocab.tokens.size() > INT32_MAX) fail("{}: {} tokens is too many", s.source, vocab.tokens.size());
    if (!vocab.token_types.empty() && vocab.token_types.size() != vocab.tokens.size()) {
        fail("{}: {} token types for {} tokens", s.source, vocab.token_types.size(), vocab.tokens.size());
    }
    s.texts = vocab.tokens;
    s.types = vocab.token_types.empty() ? std::vector<TokenType>(s.texts.size(), TokenType::Normal)
                                        : vocab.token_types;
    s.check_id(vocab.bos_token_id, "tokenizer.ggml.bos_token_id");
    s.check_id(vocab.eos_token_id, "tokenizer.ggml.eos_token_id");
    s.bos = vocab.bos_token_id;
    s.eos = vocab.eos_token_id;
    s.add_bos = vocab.add_bos_token;
    if (s.add_bos && s.bos < 0) fail("{}: add_bos_token is set but there is no bos_token_id", s.source);
    s.build_tokens();
    s.build_byte_ids();
    s.build_merges(vocab.merges);
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

// What one encode call keeps between pieces.
class EncodeSession {
  public:
    EncodeSession(const Tokenizer::State& state, std::vector<int32_t>& out) : s_(state), out_(out) {}

    void encode_segment(std::string_view text) {
        std::string repaired;
        if (first_invalid_utf8(text) != text.size()) {
            repaired = repair_utf8(text);
            text = repaired;
        }
        std::string normalized;
        if (s_.normalize_nfc && !is_nfc_inert(text)) {
            normalized = normalize_nfc(text);
            text = normalized;
        }
        piece_ends_.clear();
        pre_tokenize(s_.pre, text, piece_ends_);
        uint32_t start = 0;
        for (const uint32_t end : piece_ends_) {
            encode_piece(text.substr(start, end - start));
            start = end;
        }
    }

  private:
    struct CachedIds {
        uint32_t offset;
        uint32_t count;
    };

    void encode_piece(std::string_view piece) {
        if (piece.size() == 1) {
            out_.push_back(s_.byte_ids[static_cast<uint8_t>(piece[0])]);
            return;
        }
        if (s_.ignore_merges) {
            const auto it = s_.ids_by_bytes.find(piece);
            if (it != s_.ids_by_bytes.end()) {
                out_.push_back(it->second);
                return;
            }
        }
        if (piece.size() > kMaxCachedPieceBytes) {
            bpe_encode(piece, s_.byte_ids, s_.merges, workspace_, out_);
            return;
        }
        const auto cached = cache_.find(piece);
        if (cached != cache_.end()) {
            const CachedIds c = cached->second;
            out_.insert(out_.end(), cache_ids_.begin() + c.offset, cache_ids_.begin() + c.offset + c.count);
            return;
        }
        const size_t first = out_.size();
        bpe_encode(piece, s_.byte_ids, s_.merges, workspace_, out_);
        remember(piece, first);
    }

    void remember(std::string_view piece, size_t first) {
        if (cache_.size() >= kMaxCachedPieces) {
            cache_.clear();
            cache_ids_.clear();
        }
        const auto offset = static_cast<uint32_t>(cache_ids_.size());
        cache_ids_.insert(cache_ids_.end(), out_.begin() + static_cast<ptrdiff_t>(first), out_.end());
        cache_.emplace(std::string(piece), CachedIds{offset, static_cast<uint32_t>(out_.size() - first)});
    }

    const Tokenizer::State& s_;
    std::vector<int32_t>& out_;
    std::vector<uint32_t> piece_ends_;
    BpeWorkspace workspace_;
    std::unordered_map<std::string, CachedIds, StringHash, std::equal_to<>> cache_;
    std::vector<int32_t> cache_ids_;
};

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
    const State& s = *state_;
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 2);
    if (options.add_bos && s.add_bos) ids.push_back(s.bos);
    EncodeSession session(s, ids);
    size_t pos = 0;
    while (pos < text.size()) {
        const auto special = s.specials.find(text, pos, options.parse_special);
        const size_t segment_end = special ? special->start : text.size();
        if (segment_end > pos) session.encode_segment(text.substr(pos, segment_end - pos));
        if (!special) break;
        ids.push_back(special->id);
        pos = special->start + special->length;
    }
    return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
    std::string text;
    for (const int32_t id : ids) {
        if (!options.render_special && token_type(id) == TokenType::Control) continue;
        text += token_bytes(id);
    }
    return text;
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= state_->bytes.size()) {
        fail("token id {} is out of range (the vocabulary has {} tokens)", id, state_->bytes.size());
    }
    return state_->bytes[static_cast<size_t>(id)];
}

const std::string& Tokenizer::token_text(int32_t id) const {
    token_bytes(id);  // range check
    return state_->texts[static_cast<size_t>(id)];
}

TokenType Tokenizer::token_type(int32_t id) const {
    token_bytes(id);  // range check
    return state_->types[static_cast<size_t>(id)];
}

size_t Tokenizer::vocab_size() const {
    return state_->texts.size();
}
PreTokenizer Tokenizer::pre_tokenizer() const {
    return state_->pre;
}
int32_t Tokenizer::bos_id() const {
    return state_->bos;
}
int32_t Tokenizer::eos_id() const {
    return state_->eos;
}
bool Tokenizer::adds_bos() const {
    return state_->add_bos;
}

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, DecodeOptions options)
    : tokenizer_(&tokenizer), options_(options) {}

std::string StreamingDecoder::push(int32_t id) {
    if (!options_.render_special && tokenizer_->token_type(id) == TokenType::Control) return {};
    pending_ += tokenizer_->token_bytes(id);
    std::string out;
    size_t pos = 0;
    while (pos < pending_.size()) {
        size_t subpart = 0;
        const size_t length = utf8_sequence_length(pending_, pos, &subpart);
        if (length > 0) {
            out.append(pending_, pos, length);
        } else if (utf8_is_incomplete_prefix(std::string_view(pending_).substr(pos))) {
            break;  // the rest may be completed by the next token
        } else {
            append_utf8(out, kReplacementCharacter);
        }
        pos += subpart;
    }
    pending_.erase(0, pos);
    return out;
}

std::string StreamingDecoder::finish() {
    std::string out = repair_utf8(pending_);
    pending_.clear();
    return out;
}

}  // namespace hearth::tokenizer
