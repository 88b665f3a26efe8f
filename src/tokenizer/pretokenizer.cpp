#include "tokenizer/pretokenizer.h"

#include <array>

#include "common/error.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

struct Char {
    char32_t cp = 0;
    CharClass cls = CharClass::Other;
    uint32_t length = 0;  // bytes; 0 past the end of the text
};

// Reads code points of well-formed UTF-8 with their classes.
class Scanner {
  public:
    explicit Scanner(std::string_view text) : text_(text) {}

    size_t size() const { return text_.size(); }

    Char at(size_t pos) const {
        if (pos >= text_.size()) return {};
        const auto lead = static_cast<uint8_t>(text_[pos]);
        if (lead < 0x80) return {lead, ascii_class(lead), 1};
        const size_t length = utf8_sequence_length(text_, pos);
        if (length == 0) fail("tokenizer: internal error: pre-tokenizer input is not UTF-8 at byte {}", pos);
        const char32_t cp = utf8_decode(text_, pos, length);
        return {cp, char_class(cp), static_cast<uint32_t>(length)};
    }

    // The end of the run of code points of class `cls` starting at pos, taking at most `limit`.
    size_t skip(size_t pos, CharClass cls, size_t limit = SIZE_MAX) const {
        for (size_t taken = 0; taken < limit; ++taken) {
            const Char c = at(pos);
            if (c.length == 0 || c.cls != cls) break;
            pos += c.length;
        }
        return pos;
    }

  private:
    static CharClass ascii_class(uint8_t byte) {
        static const auto table = [] {
            std::array<CharClass, 128> t{};
            for (char32_t cp = 0; cp < 128; ++cp) t[cp] = char_class(cp);
            return t;
        }();
        return table[byte];
    }

    std::string_view text_;
};

bool is_ascii_letter_ignoring_case(const Char& c, char lower) {
    return c.cp == static_cast<char32_t>(lower) || c.cp == static_cast<char32_t>(lower - 'a' + 'A');
}

// 's 't 're 've 'm 'll 'd: the contraction's length after the apostrophe at `pos`, or 0.
size_t contraction_length(const Scanner& s, size_t pos, bool ignore_case) {
    const Char first = s.at(pos + 1);
    const auto is = [&](const Char& c, char lower) {
        return ignore_case ? is_ascii_letter_ignoring_case(c, lower) : c.cp == static_cast<char32_t>(lower);
    };
    if (is(first, 's') || is(first, 't') || is(first, 'm') || is(first, 'd')) return 1;
    const Char second = s.at(pos + 1 + first.length);
    if ((is(first, 'r') && is(second, 'e')) || (is(first, 'v') && is(second, 'e')) ||
        (is(first, 'l') && is(second, 'l'))) {
        return 2;
    }
    return 0;
}

struct SpaceRun {
    size_t end = 0;                 // first byte after the run
    size_t last_start = 0;          // start of the run's last code point
    size_t after_last_newline = 0;  // end of the last \r or \n in the run, 0 when none
    size_t count = 0;               // code points
};

SpaceRun scan_spaces(const Scanner& s, size_t pos) {
    SpaceRun run;
    for (Char c = s.at(pos); c.length != 0 && is_space(c.cls); c = s.at(pos)) {
        run.last_start = pos;
        pos += c.length;
        if (c.cls == CharClass::Newline) run.after_last_newline = pos;
        ++run.count;
    }
    run.end = pos;
    return run;
}

// \s+(?!\S)|\s+ : a run of spaces, less its last code point when a non-space follows (that one
// then leads the next piece).
size_t end_of_space_piece(const SpaceRun& run, size_t text_size) {
    if (run.end == text_size || run.count == 1) return run.end;
    return run.last_start;
}

// One piece of llama-bpe / qwen2 starting at pos; returns its end.
size_t next_llama3_piece(const Scanner& s, size_t pos, size_t max_digits) {
    const Char c = s.at(pos);
    if (c.cp == '\'') {
        if (const size_t n = contraction_length(s, pos, true)) return pos + 1 + n;
    }
    if (c.cls == CharClass::Letter) return s.skip(pos, CharClass::Letter);
    if (c.cls == CharClass::Space || c.cls == CharClass::Other) {  // [^\r\n\p{L}\p{N}]?\p{L}+
        if (s.at(pos + c.length).cls == CharClass::Letter && s.at(pos + c.length).length != 0) {
            return s.skip(pos + c.length, CharClass::Letter);
        }
    }
    if (c.cls == CharClass::Number) return s.skip(pos, CharClass::Number, max_digits);
    const size_t others = c.cp == ' ' ? pos + 1 : pos;  //  ?[^\s\p{L}\p{N}]+[\r\n]*
    const Char first_other = s.at(others);
    if (first_other.length != 0 && first_other.cls == CharClass::Other) {
        return s.skip(s.skip(others, CharClass::Other), CharClass::Newline);
    }
    const SpaceRun run = scan_spaces(s, pos);                        // c is a space here
    if (run.after_last_newline != 0) return run.after_last_newline;  // \s*[\r\n]+
    return end_of_space_piece(run, s.size());
}

// One piece of gpt-2 starting at pos; returns its end.
size_t next_gpt2_piece(const Scanner& s, size_t pos) {
    const Char c = s.at(pos);
    if (c.cp == '\'') {
        if (const size_t n = contraction_length(s, pos, false)) return pos + 1 + n;
    }
    const size_t body = c.cp == ' ' ? pos + 1 : pos;  //  ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+
    const Char first = s.at(body);
    if (first.length != 0 && !is_space(first.cls)) return s.skip(body, first.cls);
    return end_of_space_piece(scan_spaces(s, pos), s.size());
}

}  // namespace

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<uint32_t>& piece_ends) {
    if (text.size() > UINT32_MAX)
        fail("tokenizer: a text segment of {} bytes is over the 4 GiB limit", text.size());
    const Scanner scanner(text);
    size_t pos = 0;
    while (pos < text.size()) {
        switch (kind) {
            case PreTokenizer::Llama3:
                pos = next_llama3_piece(scanner, pos, 3);
                break;
            case PreTokenizer::Qwen2:
                pos = next_llama3_piece(scanner, pos, 1);
                break;
            case PreTokenizer::Gpt2:
                pos = next_gpt2_piece(scanner, pos);
                break;
        }
        piece_ends.push_back(static_cast<uint32_t>(pos));
    }
}

}  // namespace hearth::tokenizer
