// UTF-8 repair as WHATWG does it, and the NFC fast path against utf8proc's full NFC.
#include <utf8proc.h>

#include <cstdlib>
#include <random>

#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace hearth::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, RepairReplacesEachMaximalSubpart) {
    // The cases Node's Buffer.toString gives (checked): "a\xE2\x82b" has one U+FFFD, a
    // surrogate three.
    EXPECT_EQ(repair_utf8("a\xE2\x82"
                          "b"),
              "a" + kFffd + "b");
    EXPECT_EQ(repair_utf8("\xF0\x9F\x80"), kFffd);
    EXPECT_EQ(repair_utf8("\xC0\xAF"), kFffd + kFffd);
    EXPECT_EQ(repair_utf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);
    EXPECT_EQ(repair_utf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
    EXPECT_EQ(repair_utf8("ok \xF0\x9F\xA6\x99"), "ok \xF0\x9F\xA6\x99");
    EXPECT_EQ(first_invalid_utf8("ab\xFF"), 2u);
    EXPECT_TRUE(utf8_is_incomplete_prefix("\xF0\x9F\xA6"));
    EXPECT_FALSE(utf8_is_incomplete_prefix("\xF0\x41"));
    EXPECT_FALSE(utf8_is_incomplete_prefix("\xED\xA0"));
}

TEST(Unicode, ClassesFollowOniguruma) {
    EXPECT_EQ(char_class(U'a'), CharClass::Letter);
    EXPECT_EQ(char_class(0x4E2D), CharClass::Letter);
    EXPECT_EQ(char_class(0x2163), CharClass::Number);  // Ⅳ is Nl
    EXPECT_EQ(char_class(0x00B2), CharClass::Number);  // ² is No
    EXPECT_EQ(char_class(0x0085), CharClass::Space);
    EXPECT_EQ(char_class(0x00A0), CharClass::Space);
    EXPECT_EQ(char_class(0x001C), CharClass::Other);  // not White_Space, though Python's isspace says so
    EXPECT_EQ(char_class(0x180E), CharClass::Other);
    EXPECT_EQ(char_class(0x0301), CharClass::Other);  // Mn is not \p{L}
    EXPECT_EQ(char_class(U'\n'), CharClass::Newline);
    EXPECT_EQ(char_class(0x1F999), CharClass::Other);
}

std::string utf8proc_full_nfc(const std::string& text) {
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                static_cast<utf8proc_ssize_t>(text.size()), &out,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    EXPECT_GE(n, 0);
    std::string result(reinterpret_cast<const char*>(out),
                       static_cast<size_t>(std::max<utf8proc_ssize_t>(n, 0)));
    std::free(out);
    return result;
}

TEST(Unicode, NfcFastPathEqualsFullNfc) {
    static const char32_t alphabet[] = {'a',    'e',    'A',    ' ',    0x0301, 0x0308, 0x0327,  0x031B,
                                        0x0323, 0x00E9, 0x1E69, 0x212B, 0x2126, 0x1100, 0x1161,  0x11A8,
                                        0xAC00, 0x0915, 0x093C, 0x0958, 0x4E2D, 0xF900, 0x2F800, 0x1F999,
                                        0x0344, 0x0F73, 0x0CC6, 0x0CC2, 0x0CD5};
    std::mt19937 rng(5);
    for (int i = 0; i < 20000; ++i) {
        std::string text;
        for (size_t n = rng() % 12; n > 0; --n) append_utf8(text, alphabet[rng() % std::size(alphabet)]);
        const std::string expected = utf8proc_full_nfc(text);
        ASSERT_EQ(normalize_nfc(text), expected) << testing::to_hex(text);
        if (is_nfc_inert(text)) {
            ASSERT_EQ(text, expected) << testing::to_hex(text);
        }
    }
}

}  // namespace
}  // namespace hearth::tokenizer
