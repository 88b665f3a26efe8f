// UTF-8 decoding and repair. Invalid input is repaired the way the WHATWG Encoding standard
// (JavaScript's TextDecoder, Node's Buffer.toString, Python's errors="replace") does it: each
// maximal subpart of an ill-formed sequence (Unicode 15, section 3.9, table 3-8) becomes one
// U+FFFD. Hugging Face tokenizers only ever sees such repaired strings, so the tokenizer repairs
// its input the same way before encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::tokenizer {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;

// The length of the well-formed sequence starting at text[pos] (1 to 4), or 0 when the bytes
// there are not a complete well-formed sequence. `*subpart` (when given) receives the length of
// the maximal subpart to replace: the ill-formed prefix, at least 1, or the number of bytes
// available when the sequence is a valid but truncated prefix.
size_t utf8_sequence_length(std::string_view text, size_t pos, size_t* subpart = nullptr);

// Decodes the well-formed sequence of `length` bytes at text[pos].
char32_t utf8_decode(std::string_view text, size_t pos, size_t length);

// True when `bytes` starts a well-formed sequence that more bytes could complete.
bool utf8_is_incomplete_prefix(std::string_view bytes);

void append_utf8(std::string& out, char32_t cp);

// The offset of the first byte that is not part of well-formed UTF-8, or text.size().
size_t first_invalid_utf8(std::string_view text);

// `text` with every maximal ill-formed subpart replaced by U+FFFD.
std::string repair_utf8(std::string_view text);

}  // namespace hearth::tokenizer
