// Fuzzes the tokenizer two ways.
// Input starting with "GGUF": a GGUF file whose tokenizer metadata is loaded; loading must
// succeed or throw hearth::Error, and a loaded tokenizer must round-trip a fixed text.
// Anything else: byte 0 picks the pre-tokenizer (llama-bpe, qwen2, gpt-2 over the Llama 3.1
// vocabulary) and whether special tokens are parsed; the rest is text. Encoding must not fail,
// decoding must give back the text (ill-formed UTF-8 repaired, NFC for qwen2), and the
// streaming decoder must give the same text in whole characters.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"
#include "gguf/gguf.h"
#include "tokenizer/llama31_vocabulary.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace {

using namespace hearth::tokenizer;

const Tokenizer& tokenizer_with_pre(int which) {
    static const Vocabulary vocab = llama31_vocabulary();
    const auto make = [](const char* pre) {
        Vocabulary v = vocab;
        v.pre = pre;
        return Tokenizer(v, pre);
    };
    static const Tokenizer tokenizers[] = {make("llama-bpe"), make("qwen2"), make("gpt-2")};
    return tokenizers[which];
}

void check(bool ok) {
    if (!ok) __builtin_trap();
}

void fuzz_text(const Tokenizer& tok, std::string_view text, bool parse_special) {
    const auto ids = tok.encode(text, {.add_bos = true, .parse_special = parse_special});
    for (const int32_t id : ids) check(id >= 0 && static_cast<size_t>(id) < tok.vocab_size());
    const std::string decoded = tok.decode(ids, {.render_special = true});
    std::string expected = repair_utf8(text);
    if (tok.pre_tokenizer() == PreTokenizer::Qwen2) expected = normalize_nfc(expected);
    if (tok.adds_bos()) expected = std::string(tok.token_bytes(tok.bos_id())) + expected;
    check(decoded == expected);

    StreamingDecoder stream(tok);
    std::string streamed;
    for (const int32_t id : ids) {
        const std::string piece = stream.push(id);
        check(first_invalid_utf8(piece) == piece.size());
        streamed += piece;
    }
    streamed += stream.finish();
    check(streamed == repair_utf8(decoded));
}

void fuzz_gguf(const uint8_t* data, size_t size) {
    try {
        const hearth::gguf::File file = hearth::gguf::File::parse({data, size}, "fuzz.gguf");
        const Tokenizer tok = Tokenizer::from_gguf(file);
        fuzz_text(tok, "Hello, y'all! 123 \xF0\x9F\xA6\x99 <|eot_id|>\n", true);
    } catch (const hearth::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size >= 4 && std::string_view(reinterpret_cast<const char*>(data), 4) == "GGUF") {
        fuzz_gguf(data, size);
        return 0;
    }
    if (size == 0) return 0;
    const Tokenizer& tok = tokenizer_with_pre(data[0] % 3);
    const bool parse_special = (data[0] & 0x80) != 0;
    fuzz_text(tok, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), parse_special);
    return 0;
}
