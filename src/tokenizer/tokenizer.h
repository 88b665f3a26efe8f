// Byte-level BPE tokenizer (GGUF `tokenizer.ggml.model` = "gpt2") loaded from GGUF metadata,
// exact to Hugging Face tokenizers for the llama-bpe (Llama 3.x), qwen2 (Qwen 2/2.5/3) and gpt-2
// pre-tokenizers.
//
// Encoding, as HF does it: (1) special tokens are cut out of the text (special_tokens.h);
// (2) each stretch between them is repaired to well-formed UTF-8 (utf8.h) and, for qwen2,
// NFC-normalized; (3) it is split into pieces (pretokenizer.h); (4) each piece is looked up
// whole when the vocabulary ignores merges for known words (Llama 3: HF's ignore_merges), else
// BPE-encoded (bpe.h); (5) BOS goes first when the vocabulary asks for it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/llama31_vocabulary.h"
#include "tokenizer/pretokenizer.h"

namespace hearth::tokenizer {

// The tokenizer.ggml.* metadata of a GGUF file. Throws hearth::Error naming the file and key
// when a key is missing or of the wrong type.
Vocabulary read_vocabulary(const gguf::File& file);

struct EncodeOptions {
    bool add_bos = true;        // prepend BOS when the vocabulary's add_bos_token says so
    bool parse_special = true;  // false: control tokens' text is ordinary text (HF split_special_tokens)
};

struct DecodeOptions {
    bool render_special = true;  // false: control tokens decode to nothing (HF skip_special_tokens)
};

class Tokenizer {
  public:
    // Validates the vocabulary and builds the lookup tables; throws hearth::Error naming
    // `source` (the file) and the defect: unsupported model or pre-tokenizer, ids out of range,
    // a merge naming an unknown token, a byte without a token, ...
    explicit Tokenizer(const Vocabulary& vocab, std::string source = "vocabulary");
    static Tokenizer from_gguf(const gguf::File& file);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // Any bytes: ill-formed UTF-8 is encoded as U+FFFD (see utf8.h). Safe to call from several
    // threads at once.
    std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;

    // The exact bytes of the tokens, concatenated (which may end inside a UTF-8 character).
    // Throws hearth::Error for an id out of range.
    std::string decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;

    // The bytes one token stands for (its text for control and user-defined tokens).
    std::string_view token_bytes(int32_t id) const;
    // The token as the vocabulary spells it (byte-level alphabet for ordinary tokens).
    const std::string& token_text(int32_t id) const;
    TokenType token_type(int32_t id) const;

    size_t vocab_size() const;
    PreTokenizer pre_tokenizer() const;
    int32_t bos_id() const;  // -1 when the vocabulary has none
    int32_t eos_id() const;
    bool adds_bos() const;

    struct State;  // defined in tokenizer.cpp

  private:
    std::unique_ptr<State> state_;
};

// Turns a stream of token ids into text that is always whole UTF-8 characters: bytes of a
// character split across tokens (a multi-token emoji) are held back until the character is
// complete. Ill-formed bytes come out as U+FFFD, so the concatenated output equals the decoded
// bytes with ill-formed subparts replaced (repair_utf8 of decode()).
class StreamingDecoder {
  public:
    explicit StreamingDecoder(const Tokenizer& tokenizer, DecodeOptions options = {});

    // The text that the token completes (often empty while a character is incomplete).
    std::string push(int32_t id);
    // The held-back bytes, as U+FFFD, at the end of the stream; the decoder is then empty.
    std::string finish();

  private:
    const Tokenizer* tokenizer_;
    DecodeOptions options_;
    std::string pending_;  // bytes of an incomplete character
};

}  // namespace hearth::tokenizer
