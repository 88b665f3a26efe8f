// The pre-tokenizer state machines against their regexes run by PCRE2 (the reference), on
// seeded random text over every character class. The patterns are HF's, with two spellings
// made explicit so that PCRE2 means what Oniguruma (HF's regex engine) means:
//   \s    → [\t-\r\x{85}\p{Z}]  (White_Space; PCRE2's \s leaves out U+0085), \S likewise
//   (?i:) → ASCII classes       (PCRE2 would also fold U+017F 'ſ' to 's'; Oniguruma does not)
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <random>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace hearth::tokenizer {
namespace {

constexpr const char* kSpace = "[\\t-\\r\\x{85}\\p{Z}]";
constexpr const char* kNotSpace = "[^\\t-\\r\\x{85}\\p{Z}]";
constexpr const char* kNotSpaceLetterNumber = "[^\\t-\\r\\x{85}\\p{Z}\\p{L}\\p{N}]";
constexpr const char* kAsciiContractions = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";

std::string llama3_pattern(const char* digits) {
    return fmt::format(
        "{}|[^\\r\\n\\p{{L}}\\p{{N}}]?\\p{{L}}+|\\p{{N}}{}| ?{}+[\\r\\n]*|{}*[\\r\\n]+|{}+(?!{})|{}+",
        kAsciiContractions, digits, kNotSpaceLetterNumber, kSpace, kSpace, kNotSpace, kSpace);
}

std::string gpt2_pattern() {
    return fmt::format("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{{L}}+| ?\\p{{N}}+| ?{}+|{}+(?!{})|{}+",
                       kNotSpaceLetterNumber, kSpace, kNotSpace, kSpace);
}

class Pcre2Splitter {
  public:
    explicit Pcre2Splitter(const std::string& pattern) {
        int error = 0;
        PCRE2_SIZE offset = 0;
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
        if (!code_) throw std::runtime_error(fmt::format("bad pattern at {}: {}", offset, pattern));
        match_ = pcre2_match_data_create_from_pattern(code_, nullptr);
    }
    ~Pcre2Splitter() {
        pcre2_match_data_free(match_);
        pcre2_code_free(code_);
    }

    // End offsets of the matches; every character is in some match for these patterns.
    std::vector<uint32_t> split(std::string_view text) const {
        std::vector<uint32_t> ends;
        size_t pos = 0;
        while (pos < text.size()) {
            const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, 0,
                                       match_, nullptr);
            if (rc < 0) break;
            const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_);
            if (ovector[0] != pos || ovector[1] == pos) break;  // a gap: the patterns leave none
            pos = ovector[1];
            ends.push_back(static_cast<uint32_t>(pos));
        }
        return ends;
    }

  private:
    pcre2_code* code_ = nullptr;
    pcre2_match_data* match_ = nullptr;
};

// Random text from characters of every class the patterns distinguish.
std::string random_text(std::mt19937& rng) {
    static const char32_t alphabet[] = {
        'a',     'Z',     's',     'S',    't',    'l',    'L',    'e',    'r',    'v',    'm',    'd',
        'x',     '\'',    '\'',    '1',    '7',    ' ',    ' ',    ' ',    '\t',   '\n',   '\r',   '\v',
        '\f',    '.',     ',',     '!',    '(',    '_',    '-',    0x85,   0xA0,   0x17F,  0x1C,   0x0301,
        0x00E9,  0x00B2,  0x2163,  0x0663, 0x4E2D, 0x3000, 0x2028, 0x2029, 0x200B, 0x200D, 0xFEFF, 0x1F999,
        0x1F3FD, 0x10400, 0x1D7D8, 0x0915, 0x093F, 0x0627, 0x0E01, 0x2003};
    std::string text;
    const size_t length = rng() % 24;
    for (size_t i = 0; i < length; ++i) append_utf8(text, alphabet[rng() % std::size(alphabet)]);
    return text;
}

void expect_matches_regex(PreTokenizer kind, const std::string& pattern) {
    const Pcre2Splitter reference(pattern);
    std::mt19937 rng(static_cast<uint32_t>(kind) + 1);
    size_t mismatches = 0;
    for (int i = 0; i < 20000; ++i) {
        const std::string text = random_text(rng);
        std::vector<uint32_t> ends;
        pre_tokenize(kind, text, ends);
        if (ends == reference.split(text)) continue;
        if (++mismatches <= 5)
            ADD_FAILURE() << "text (hex) " << testing::to_hex(text) << ": '" << text << "'";
    }
    EXPECT_EQ(mismatches, 0u);
}

TEST(PreTokenizer, Llama3MatchesItsRegex) {
    expect_matches_regex(PreTokenizer::Llama3, llama3_pattern("{1,3}"));
}
TEST(PreTokenizer, Qwen2MatchesItsRegex) {
    expect_matches_regex(PreTokenizer::Qwen2, llama3_pattern(""));
}
TEST(PreTokenizer, Gpt2MatchesItsRegex) {
    expect_matches_regex(PreTokenizer::Gpt2, gpt2_pattern());
}

TEST(PreTokenizer, SplitsAsHuggingFaceDoes) {
    const auto pieces = [](PreTokenizer kind, std::string_view text) {
        std::vector<uint32_t> ends;
        pre_tokenize(kind, text, ends);
        std::vector<std::string> out;
        uint32_t start = 0;
        for (const uint32_t end : ends) out.emplace_back(text.substr(start, end - start)), start = end;
        return out;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(pieces(PreTokenizer::Llama3, "'ſ x'S 'LL"),
              (V{"'ſ", " x", "'S", " '", "LL"}));  // checked against HF
    EXPECT_EQ(pieces(PreTokenizer::Llama3, "1234567 x"), (V{"123", "456", "7", " x"}));
    EXPECT_EQ(pieces(PreTokenizer::Qwen2, "123"), (V{"1", "2", "3"}));
    EXPECT_EQ(pieces(PreTokenizer::Llama3, "  \n  x\n"), (V{"  \n", " ", " x", "\n"}));
    EXPECT_EQ(pieces(PreTokenizer::Gpt2, "it's  ok\n"), (V{"it", "'s", " ", " ok", "\n"}));
}

}  // namespace
}  // namespace hearth::tokenizer
