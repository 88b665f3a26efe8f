// The tokenizer's behaviour at its API: llama.cpp's llama-bpe cases, BOS, special tokens,
// decoding, malformed vocabularies, and near-linear time on long input.
#include <chrono>
#include <random>
#include <sstream>

#include "common/error.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace hearth::tokenizer {
namespace {

using testing::llama3_tokenizer;
using testing::qwen3_tokenizer;

constexpr EncodeOptions kNoBos{.add_bos = false};

std::vector<int32_t> parse_ids(const std::string& line) {
    std::istringstream in(line);
    std::vector<int32_t> ids;
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
}

// ../shared/fixtures/llama3.1-tokenizer/tokenizer-cases.*: llama.cpp's cases, HF's ids.
TEST(Tokenizer, Llama3FixtureCases) {
    const std::string dir = std::string(HEARTH_SHARED_FIXTURES) + "/llama3.1-tokenizer/";
    const std::string inputs = testing::read_file(dir + "tokenizer-cases.inp");
    std::istringstream outputs(testing::read_file(dir + "tokenizer-cases.out"));
    const std::string separator = "\n__ggml_vocab_test__\n";
    size_t start = 0;
    size_t cases = 0;
    for (size_t end; (end = inputs.find(separator, start)) != std::string::npos;
         start = end + separator.size()) {
        const std::string text = inputs.substr(start, end - start);
        std::string expected;
        ASSERT_TRUE(std::getline(outputs, expected));
        EXPECT_EQ(llama3_tokenizer().encode(text, kNoBos), parse_ids(expected)) << "text: '" << text << "'";
        EXPECT_EQ(llama3_tokenizer().decode(parse_ids(expected)), text);
        ++cases;
    }
    EXPECT_EQ(cases, 46u);
}

TEST(Tokenizer, BosFollowsTheVocabulary) {
    EXPECT_EQ(llama3_tokenizer().encode("Hello world"), (std::vector<int32_t>{128000, 9906, 1917}));
    EXPECT_EQ(llama3_tokenizer().encode(""), (std::vector<int32_t>{128000}));
    EXPECT_EQ(llama3_tokenizer().encode("Hello world", kNoBos), (std::vector<int32_t>{9906, 1917}));
    EXPECT_EQ(qwen3_tokenizer().encode("Hello world"), (std::vector<int32_t>{9707, 1879}));  // Qwen adds none
}

TEST(Tokenizer, SpecialTokensMatchOnlyWhenAsked) {
    const std::string text = "<|start_header_id|>user<|end_header_id|>";
    EXPECT_EQ(llama3_tokenizer().encode(text, kNoBos), (std::vector<int32_t>{128006, 882, 128007}));
    const auto as_text = llama3_tokenizer().encode(text, {.add_bos = false, .parse_special = false});
    for (const int32_t id : as_text) EXPECT_EQ(llama3_tokenizer().token_type(id), TokenType::Normal);
    EXPECT_EQ(llama3_tokenizer().decode(as_text), text);
}

// Qwen3's <think> is an added token that is not "special": HF matches it even when special
// tokens are treated as text.
TEST(Tokenizer, UserDefinedTokensAlwaysMatch) {
    const auto ids = qwen3_tokenizer().encode("<think>hi</think><|im_end|>", {.parse_special = false});
    ASSERT_GE(ids.size(), 3u);
    EXPECT_EQ(ids.front(), 151667);
    EXPECT_EQ(ids[2], 151668);
    EXPECT_NE(ids.back(), 151645);
}

TEST(Tokenizer, QwenNormalizesToNfc) {
    // "é" as e + U+0301 encodes as the precomposed U+00E9.
    EXPECT_EQ(qwen3_tokenizer().encode("e\xCC\x81"), qwen3_tokenizer().encode("\xC3\xA9"));
    EXPECT_NE(llama3_tokenizer().encode("e\xCC\x81"), llama3_tokenizer().encode("\xC3\xA9"));
}

TEST(Tokenizer, IllFormedUtf8EncodesAsReplacementCharacters) {
    const auto& tok = llama3_tokenizer();
    EXPECT_EQ(tok.encode("a\xE2\x82z", kNoBos), tok.encode("a\xEF\xBF\xBDz", kNoBos));
    EXPECT_EQ(tok.encode("\xED\xA0\x80", kNoBos), tok.encode("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", kNoBos));
}

TEST(Tokenizer, DecodeGivesExactBytesAndSkipsControlTokensOnRequest) {
    const auto& tok = llama3_tokenizer();
    const std::string text = "naïve 🦙 <|eot_id|>\n\t x";
    const auto ids = tok.encode(text);
    EXPECT_EQ(tok.decode(ids), "<|begin_of_text|>" + text);
    EXPECT_EQ(tok.decode(ids, {.render_special = false}), "naïve 🦙 \n\t x");
    EXPECT_THROW(tok.decode(std::vector<int32_t>{128256}), Error);
    EXPECT_THROW(tok.decode(std::vector<int32_t>{-1}), Error);
    EXPECT_EQ(tok.token_bytes(220), " ");
    EXPECT_EQ(tok.token_text(220), "\xC4\xA0");  // 'Ġ'
}

TEST(StreamingDecoder, EmitsOnlyWholeCharacters) {
    const auto& tok = llama3_tokenizer();
    const auto ids = tok.encode("a👨‍👩‍👧b🦙", kNoBos);
    StreamingDecoder decoder(tok);
    std::string all;
    for (const int32_t id : ids) {
        const std::string piece = decoder.push(id);
        EXPECT_EQ(first_invalid_utf8(piece), piece.size()) << "token " << id;
        all += piece;
    }
    all += decoder.finish();
    EXPECT_EQ(all, "a👨‍👩‍👧b🦙");
}

// On random id sequences (bytes of characters cut anywhere, ill-formed ones included) the
// streamed text is valid UTF-8 and equals the lossy decoding of all ids.
TEST(StreamingDecoder, MatchesLossyDecodingOnRandomIds) {
    const auto& tok = llama3_tokenizer();
    std::mt19937 rng(7);
    std::uniform_int_distribution<int32_t> any_id(0, static_cast<int32_t>(tok.vocab_size()) - 1);
    std::uniform_int_distribution<int32_t> byte_id(0, 255);  // ids 0-255 hold the single bytes
    for (int round = 0; round < 300; ++round) {
        std::vector<int32_t> ids;
        for (int i = 0; i < 20; ++i) ids.push_back(round % 2 ? any_id(rng) : byte_id(rng));
        for (const bool render_special : {true, false}) {
            StreamingDecoder decoder(tok, {.render_special = render_special});
            std::string streamed;
            for (const int32_t id : ids) streamed += decoder.push(id);
            streamed += decoder.finish();
            EXPECT_EQ(first_invalid_utf8(streamed), streamed.size());
            EXPECT_EQ(streamed, repair_utf8(tok.decode(ids, {.render_special = render_special})));
        }
    }
}

TEST(Tokenizer, RoundTripsRandomBytes) {
    std::mt19937 rng(11);
    for (int round = 0; round < 200; ++round) {
        std::string text(static_cast<size_t>(rng() % 64), '\0');
        for (char& c : text) c = static_cast<char>(rng());
        for (const Tokenizer* tok : {&llama3_tokenizer(), &qwen3_tokenizer()}) {
            const auto ids = tok->encode(text, {.add_bos = false, .parse_special = false});
            const bool nfc = tok->pre_tokenizer() == PreTokenizer::Qwen2;
            EXPECT_EQ(tok->decode(ids), nfc ? normalize_nfc(repair_utf8(text)) : repair_utf8(text));
        }
    }
}

double seconds_to_encode(const Tokenizer& tok, const std::string& text, size_t* token_count = nullptr) {
    const auto start = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text, kNoBos);
    if (token_count) *token_count = ids.size();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// 100 KB without a space is one piece; BPE over it must be O(n log n), not quadratic. The
// bound is loose for sanitizer builds; a quadratic BPE takes minutes here.
TEST(Tokenizer, LongWordsAreNearLinear) {
    std::mt19937 rng(3);
    std::string letters(100 * 1024, 'a');
    for (char& c : letters) c = static_cast<char>('a' + rng() % 26);
    for (const std::string& text : {letters, std::string(100 * 1024, 'a'), std::string(100 * 1024, ' ')}) {
        for (const Tokenizer* tok : {&llama3_tokenizer(), &qwen3_tokenizer()}) {
            size_t tokens = 0;
            EXPECT_LT(seconds_to_encode(*tok, text, &tokens), 2.0);
            EXPECT_EQ(tok->decode(tok->encode(text, kNoBos)), text);
            EXPECT_GT(tokens, 0u);
        }
    }
}

std::vector<std::string> merges_with(std::vector<std::string> merges, size_t index, std::string merge) {
    merges[index] = std::move(merge);
    return merges;
}

void expect_error(const Vocabulary& vocab, const std::string& file_name, const std::string& message_part) {
    try {
        testing::tokenizer_via_gguf(vocab, file_name);
        ADD_FAILURE() << "no error; expected one mentioning '" << message_part << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(message_part), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(file_name), std::string::npos) << e.what();
    }
}

TEST(Tokenizer, MalformedVocabulariesGiveClearErrors) {
    const Vocabulary good = llama31_vocabulary();
    Vocabulary v = good;
    v.merges = merges_with(good.merges, 5, "Ġt nosuchtoken");
    expect_error(v, "unknown-merge.gguf", "merge 5 'Ġt nosuchtoken' names the token 'nosuchtoken'");
    v.merges = merges_with(good.merges, 9, "justonetoken");
    expect_error(v, "bad-merge.gguf", "merge 9 'justonetoken' is not two tokens");
    v = good;
    v.bos_token_id = 200000;
    expect_error(v, "bos.gguf", "bos_token_id 200000 is out of range");
    v = good;
    v.pre = "mystery";
    expect_error(v, "pre.gguf", "tokenizer.ggml.pre 'mystery' is not supported");
    v = good;
    v.model = "llama";
    expect_error(v, "model.gguf", "tokenizer.ggml.model 'llama' is not supported");
    v = good;
    v.tokens[198] = "not-a-newline";  // 'Ċ', the token for byte 0x0A
    expect_error(v, "byte.gguf", "no token for byte 0x0A");
    v = good;
    v.merges.clear();
    expect_error(v, "no-merges.gguf", "tokenizer.ggml.merges is empty");
}

TEST(Tokenizer, MissingMergesKeyIsAnError) {
    const Vocabulary vocab = llama31_vocabulary();
    gguf::Writer writer;
    writer.add_metadata("tokenizer.ggml.model", vocab.model);
    writer.add_metadata("tokenizer.ggml.pre", vocab.pre);
    writer.add_metadata("tokenizer.ggml.tokens", gguf::Value::string_array(vocab.tokens));
    const auto path = testing::temp_dir() / "missing-merges.gguf";
    writer.write(path, [](size_t, const gguf::TensorInfo&, std::span<uint8_t>) {});
    const gguf::File file = gguf::File::open(path);
    try {
        Tokenizer::from_gguf(file);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.merges is missing"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace hearth::tokenizer
