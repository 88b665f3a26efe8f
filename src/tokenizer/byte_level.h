// GPT-2's byte-level alphabet: byte-level BPE vocabularies spell every byte as one printable
// code point, so that tokens are printable strings. Bytes that are printable in Latin-1
// ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68 bytes map, in
// increasing order, to U+0100, U+0101, ... (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::tokenizer {

char32_t byte_to_code_point(uint8_t byte);

// The vocabulary spelling of raw bytes.
std::string bytes_to_token_text(std::string_view bytes);

// The raw bytes a token's spelling stands for, or nullopt when a code point in it is not in the
// alphabet (such a token decodes to its own text, as in Hugging Face's ByteLevel decoder).
std::optional<std::string> token_text_to_bytes(std::string_view text);

}  // namespace hearth::tokenizer
