#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

constexpr bool stands_for_itself(uint8_t byte) {
    return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE);
}

constexpr std::array<char32_t, 256> make_alphabet() {
    std::array<char32_t, 256> alphabet{};
    char32_t next = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
        alphabet[byte] = stands_for_itself(static_cast<uint8_t>(byte)) ? static_cast<char32_t>(byte) : next++;
    }
    return alphabet;
}

constexpr std::array<char32_t, 256> kAlphabet = make_alphabet();
constexpr char32_t kAlphabetEnd = 0x100 + 68;  // the remapped code points are U+0100..U+0143

// The inverse: code points below kAlphabetEnd to bytes; -1 where none.
constexpr std::array<int16_t, kAlphabetEnd> make_inverse() {
    std::array<int16_t, kAlphabetEnd> inverse{};
    for (auto& entry : inverse) entry = -1;
    for (int byte = 0; byte < 256; ++byte) inverse[kAlphabet[byte]] = static_cast<int16_t>(byte);
    return inverse;
}

constexpr std::array<int16_t, kAlphabetEnd> kInverse = make_inverse();

}  // namespace

char32_t byte_to_code_point(uint8_t byte) {
    return kAlphabet[byte];
}

std::string bytes_to_token_text(std::string_view bytes) {
    std::string text;
    text.reserve(bytes.size() * 2);
    for (const char byte : bytes) append_utf8(text, kAlphabet[static_cast<uint8_t>(byte)]);
    return text;
}

std::optional<std::string> token_text_to_bytes(std::string_view text) {
    std::string bytes;
    bytes.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
        const size_t length = utf8_sequence_length(text, pos);
        if (length == 0) return std::nullopt;
        const char32_t cp = utf8_decode(text, pos, length);
        if (cp >= kAlphabetEnd || kInverse[cp] < 0) return std::nullopt;
        bytes.push_back(static_cast<char>(kInverse[cp]));
        pos += length;
    }
    return bytes;
}

}  // namespace hearth::tokenizer
