#include "tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

// Unicode table 3-7: the range the second byte must lie in, by lead byte; later bytes are
// always 80..BF.
struct LeadByte {
    uint8_t length;  // 0: never a lead byte
    uint8_t second_min;
    uint8_t second_max;
};

constexpr LeadByte lead_byte(uint8_t byte) {
    if (byte < 0x80) return {1, 0, 0};
    if (byte < 0xC2) return {0, 0, 0};
    if (byte < 0xE0) return {2, 0x80, 0xBF};
    if (byte == 0xE0) return {3, 0xA0, 0xBF};
    if (byte == 0xED) return {3, 0x80, 0x9F};  // excludes the surrogates D800..DFFF
    if (byte < 0xF0) return {3, 0x80, 0xBF};
    if (byte == 0xF0) return {4, 0x90, 0xBF};  // excludes overlong 4-byte forms
    if (byte < 0xF4) return {4, 0x80, 0xBF};
    if (byte == 0xF4) return {4, 0x80, 0x8F};  // excludes code points above U+10FFFF
    return {0, 0, 0};
}

}  // namespace

size_t utf8_sequence_length(std::string_view text, size_t pos, size_t* subpart) {
    const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
    const LeadByte lead = lead_byte(byte_at(pos));
    size_t valid = lead.length == 0 ? 0 : 1;  // bytes so far that belong to a possible sequence
    if (valid == 1 && lead.length > 1) {
        for (size_t i = 1; i < lead.length && pos + i < text.size(); ++i) {
            const uint8_t byte = byte_at(pos + i);
            const bool ok =
                i == 1 ? byte >= lead.second_min && byte <= lead.second_max : (byte & 0xC0) == 0x80;
            if (!ok) break;
            valid = i + 1;
        }
    }
    if (valid == lead.length && valid > 0) {
        if (subpart) *subpart = valid;
        return valid;
    }
    if (subpart) *subpart = valid == 0 ? 1 : valid;
    return 0;
}

char32_t utf8_decode(std::string_view text, size_t pos, size_t length) {
    const auto byte_at = [&](size_t i) { return static_cast<char32_t>(static_cast<uint8_t>(text[pos + i])); };
    switch (length) {
        case 1:
            return byte_at(0);
        case 2:
            return ((byte_at(0) & 0x1F) << 6) | (byte_at(1) & 0x3F);
        case 3:
            return ((byte_at(0) & 0x0F) << 12) | ((byte_at(1) & 0x3F) << 6) | (byte_at(2) & 0x3F);
        default:
            return ((byte_at(0) & 0x07) << 18) | ((byte_at(1) & 0x3F) << 12) | ((byte_at(2) & 0x3F) << 6) |
                   (byte_at(3) & 0x3F);
    }
}

bool utf8_is_incomplete_prefix(std::string_view bytes) {
    if (bytes.empty()) return false;
    size_t subpart = 0;
    return utf8_sequence_length(bytes, 0, &subpart) == 0 && subpart == bytes.size() &&
           subpart < lead_byte(static_cast<uint8_t>(bytes[0])).length;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

size_t first_invalid_utf8(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size()) {
        if (static_cast<uint8_t>(text[pos]) < 0x80) {
            ++pos;
            continue;
        }
        const size_t length = utf8_sequence_length(text, pos);
        if (length == 0) return pos;
        pos += length;
    }
    return pos;
}

std::string repair_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 16);
    size_t pos = 0;
    while (pos < text.size()) {
        size_t subpart = 0;
        const size_t length = utf8_sequence_length(text, pos, &subpart);
        if (length > 0) {
            out.append(text.substr(pos, length));
        } else {
            append_utf8(out, kReplacementCharacter);
        }
        pos += subpart;
    }
    return out;
}

}  // namespace hearth::tokenizer
