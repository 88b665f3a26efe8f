// tokenizer.ggml.* metadata → Vocabulary. Keys and types as llama.cpp's convert_hf_to_gguf.py
// writes them: tokens and merges are string arrays, token_type an integer array with
// llama_token_type values, special ids u32, add_bos_token bool.
#include <optional>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer {
namespace {

std::vector<std::string> read_string_array(const gguf::File& file, std::string_view key) {
    const gguf::Array& array = file.get_array(key);
    std::vector<std::string> strings;
    strings.reserve(array.items.size());
    for (size_t i = 0; i < array.items.size(); ++i) {
        const std::string* s = array.items[i].as_string();
        if (!s)
            fail("{}: {}[{}] is a {}, expected a string", file.name(), key, i,
                 value_type_name(array.items[i].type()));
        strings.push_back(*s);
    }
    return strings;
}

std::vector<TokenType> read_token_types(const gguf::File& file, size_t token_count) {
    constexpr std::string_view key = "tokenizer.ggml.token_type";
    if (!file.find(key)) return std::vector<TokenType>(token_count, TokenType::Normal);
    const gguf::Array& array = file.get_array(key);
    if (array.items.size() != token_count) {
        fail("{}: {} has {} entries but tokenizer.ggml.tokens has {}", file.name(), key, array.items.size(),
             token_count);
    }
    std::vector<TokenType> types(token_count);
    for (size_t i = 0; i < token_count; ++i) {
        const std::optional<int64_t> value = array.items[i].as_int();
        if (!value) fail("{}: {}[{}] is not an integer", file.name(), key, i);
        if (*value < 0 || *value > static_cast<int64_t>(TokenType::Byte)) {
            fail("{}: {}[{}] is {}, not a token type (0 to 6)", file.name(), key, i, *value);
        }
        types[i] = static_cast<TokenType>(*value);
    }
    return types;
}

int32_t read_token_id(const gguf::File& file, std::string_view key) {
    const std::optional<int64_t> id = file.find_int(key);
    if (!id) return -1;
    if (*id < 0 || *id > INT32_MAX) fail("{}: {} is {}, not a token id", file.name(), key, *id);
    return static_cast<int32_t>(*id);
}

std::optional<bool> find_bool(const gguf::File& file, std::string_view key) {
    const gguf::Value* value = file.find(key);
    if (!value) return std::nullopt;
    if (const bool* b = std::get_if<bool>(&value->data)) return *b;
    fail("{}: {} is a {}, expected a bool", file.name(), key, value_type_name(value->type()));
}

// llama.cpp's defaults when add_bos_token is absent: the Llama 3 family adds BOS, the others
// named here do not.
bool default_add_bos(std::string_view pre) {
    return pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
}

}  // namespace

Vocabulary read_vocabulary(const gguf::File& file) {
    Vocabulary vocab;
    vocab.model = file.get_string("tokenizer.ggml.model");
    vocab.pre = file.find_string("tokenizer.ggml.pre").value_or("");
    vocab.tokens = read_string_array(file, "tokenizer.ggml.tokens");
    vocab.token_types = read_token_types(file, vocab.tokens.size());
    if (vocab.model == "gpt2") {
        if (!file.find("tokenizer.ggml.merges")) {
            fail("{}: tokenizer.ggml.merges is missing (byte-level BPE needs its merge rules)", file.name());
        }
        vocab.merges = read_string_array(file, "tokenizer.ggml.merges");
    }
    vocab.bos_token_id = read_token_id(file, "tokenizer.ggml.bos_token_id");
    vocab.eos_token_id = read_token_id(file, "tokenizer.ggml.eos_token_id");
    vocab.add_bos_token =
        find_bool(file, "tokenizer.ggml.add_bos_token").value_or(default_add_bos(vocab.pre));
    vocab.chat_template = file.find_string("tokenizer.chat_template").value_or("");
    return vocab;
}

Tokenizer Tokenizer::from_gguf(const gguf::File& file) {
    return Tokenizer(read_vocabulary(file), file.name());
}

}  // namespace hearth::tokenizer
