// The real Llama 3.1 vocabulary (tokens, merges, special tokens, chat template), compiled into
// the binary from data/llama3.1-tokenizer/ so that test models carry the real tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::tokenizer {

// GGUF token types (llama.cpp's llama_token_type numbering).
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocabulary {
    std::string model;  // tokenizer.ggml.model: "gpt2" for byte-level BPE
    std::string pre;    // tokenizer.ggml.pre: the pre-tokenizer, "llama-bpe"
    std::vector<std::string> tokens;  // by id
    std::vector<TokenType> token_types;
    std::vector<std::string> merges;  // "left right", by rank
    int32_t bos_token_id = -1;
    int32_t eos_token_id = -1;
    bool add_bos_token = true;
    std::string chat_template;
};

// Parses the embedded tokenizer.json(.gz) and tokenizer_config.json. Throws hearth::Error if
// the embedded data is damaged.
Vocabulary llama31_vocabulary();

}  // namespace hearth::tokenizer
