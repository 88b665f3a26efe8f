// The Unicode facts the pre-tokenizers need, from utf8proc (Unicode 15 on Debian 12): the
// character classes of the pre-tokenizer regexes, and NFC normalization.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::tokenizer {

// How the pre-tokenizer regexes see a code point:
//   Letter  = \p{L} (Lu Ll Lt Lm Lo), Number = \p{N} (Nd Nl No),
//   Newline = \r or \n, Space = the rest of \s,
//   Other   = everything else ([^\s\p{L}\p{N}]).
// \s is Oniguruma's, which Hugging Face tokenizers uses: the White_Space property, i.e. U+0009
// to U+000D, U+0085 and the categories Zs, Zl, Zp (checked against HF: U+001C and U+180E are
// not spaces, U+0085 and U+00A0 are).
enum class CharClass : uint8_t { Letter, Number, Space, Newline, Other };

CharClass char_class(char32_t cp);

inline bool is_space(CharClass c) {
    return c == CharClass::Space || c == CharClass::Newline;
}

// True when NFC leaves the text unchanged because no code point in it can decompose, reorder
// or compose; then normalize_nfc would only copy it.
bool is_nfc_inert(std::string_view valid_utf8);

// The NFC form of well-formed UTF-8 (Qwen2/3's tokenizer.json normalizer). Runs utf8proc only
// over the stretches around code points that may change, so mostly-ASCII text costs a copy.
std::string normalize_nfc(std::string_view valid_utf8);

}  // namespace hearth::tokenizer
