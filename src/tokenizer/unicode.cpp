#include "tokenizer/unicode.h"

#include <array>
#include <cstdlib>
#include <memory>
#include <vector>

#include <utf8proc.h>

#include "common/error.h"
#include "tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

constexpr char32_t kMaxCodePoint = 0x10FFFF;
constexpr char32_t kTableSize = 0x10000;  // a table for the BMP; utf8proc answers beyond it

CharClass class_from_utf8proc(char32_t cp) {
    if (cp == '\r' || cp == '\n') return CharClass::Newline;
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return CharClass::Space;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
            return CharClass::Letter;
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            return CharClass::Number;
        case UTF8PROC_CATEGORY_ZS:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP:
            return CharClass::Space;
        default:
            return CharClass::Other;
    }
}

const std::array<CharClass, kTableSize>& bmp_classes() {
    static const auto table = [] {
        auto t = std::make_unique<std::array<CharClass, kTableSize>>();
        for (char32_t cp = 0; cp < kTableSize; ++cp) (*t)[cp] = class_from_utf8proc(cp);
        return t;
    }();
    return *table;
}

// A code point is NFC-inert when it has canonical combining class 0, no canonical
// decomposition, and never appears after the first position of another code point's canonical
// decomposition (so it cannot compose with what precedes it). Text made of inert code points
// is its own NFC, and normalization never crosses an inert code point that is not preceded by
// a non-inert one, so stretches between them can be normalized alone.
std::vector<bool> compute_nfc_inert() {
    std::vector<bool> inert(kMaxCodePoint + 1, true);
    utf8proc_int32_t buffer[32];
    for (char32_t cp = 0; cp <= kMaxCodePoint; ++cp) {
        const auto c = static_cast<utf8proc_int32_t>(cp);
        if (utf8proc_get_property(c)->combining_class != 0) inert[cp] = false;
        int boundclass = 0;
        const utf8proc_ssize_t n = utf8proc_decompose_char(c, buffer, 32, UTF8PROC_DECOMPOSE, &boundclass);
        if (n == 1 && buffer[0] == c) continue;
        inert[cp] = false;
        for (utf8proc_ssize_t i = 1; i < n; ++i) inert[static_cast<char32_t>(buffer[i])] = false;
    }
    return inert;
}

bool nfc_inert(char32_t cp) {
    if (cp < 0x300) return true;  // nothing below U+0300 decomposes or combines with a predecessor
    static const std::vector<bool> inert = compute_nfc_inert();
    return inert[cp];
}

struct Decoded {
    char32_t cp;
    size_t length;
};

Decoded decode_at(std::string_view text, size_t pos) {
    const auto lead = static_cast<uint8_t>(text[pos]);
    if (lead < 0x80) return {lead, 1};
    const size_t length = utf8_sequence_length(text, pos);
    if (length == 0) fail("tokenizer: internal error: text at byte {} is not valid UTF-8", pos);
    return {utf8_decode(text, pos, length), length};
}

std::string utf8proc_nfc(std::string_view text) {
    utf8proc_uint8_t* result = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(
        reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
        &result, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) fail("tokenizer: NFC normalization failed: {}", utf8proc_errmsg(n));
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(result, &std::free);
    return std::string(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
}

}  // namespace

CharClass char_class(char32_t cp) {
    if (cp < kTableSize) return bmp_classes()[cp];
    return class_from_utf8proc(cp);
}

bool is_nfc_inert(std::string_view text) {
    for (size_t pos = 0; pos < text.size();) {
        if (static_cast<uint8_t>(text[pos]) < 0xCC) {  // lead bytes below CC encode code points below U+0300
            ++pos;
            continue;
        }
        const Decoded d = decode_at(text, pos);
        if (!nfc_inert(d.cp)) return false;
        pos += d.length;
    }
    return true;
}

std::string normalize_nfc(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t last_inert = 0;  // start of the latest inert code point: a stretch may compose with it
    size_t copied = 0;      // text[0, copied) is in `out`
    for (size_t pos = 0; pos < text.size();) {
        const Decoded d = decode_at(text, pos);
        if (nfc_inert(d.cp)) {
            last_inert = pos;
            pos += d.length;
            continue;
        }
        // A stretch that may change: from the inert code point before it to the next inert one.
        size_t end = pos + d.length;
        while (end < text.size()) {
            const Decoded next = decode_at(text, end);
            if (nfc_inert(next.cp)) break;
            end += next.length;
        }
        const size_t start = std::max(last_inert, copied);
        out.append(text.substr(copied, start - copied));
        out += utf8proc_nfc(text.substr(start, end - start));
        copied = end;
        pos = end;
        last_inert = end;
    }
    out.append(text.substr(copied));
    return out;
}

}  // namespace hearth::tokenizer
