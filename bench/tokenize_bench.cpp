// Tokenizer speed: encoding a 10 MB mixed text (prose, code, numbers, CJK, Cyrillic, Arabic,
// emoji) with the Llama 3.1 vocabulary, and the time to encode a 128K-token prompt.
//   tokenize_bench [--write-text PATH] [benchmark flags]
// --write-text saves the text first, so bench/tokenizer_vs_hf.sh can time Hugging Face
// tokenizers on the same bytes in the same run.
#include <benchmark/benchmark.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/llama31_vocabulary.h"
#include "tokenizer/tokenizer.h"

namespace {

using hearth::tokenizer::Tokenizer;

constexpr size_t kTextBytes = 10 * 1024 * 1024;
constexpr size_t kPromptTokens = 128 * 1024;

class TextGenerator {
  public:
    std::string generate(size_t bytes) {
        std::string text;
        text.reserve(bytes + 256);
        while (text.size() < bytes) append_paragraph(text);
        text.resize(bytes);
        // Cut at a character boundary.
        while (!text.empty() && (static_cast<uint8_t>(text.back()) & 0xC0) == 0x80) text.pop_back();
        if (!text.empty() && static_cast<uint8_t>(text.back()) >= 0xC0) text.pop_back();
        return text;
    }

  private:
    size_t below(size_t n) { return rng_() % n; }

    // Words from syllables, so that the text has a large vocabulary of words as prose does.
    std::string word() {
        static const char* syllables[] = {"the", "an",  "ing",  "tion", "re", "con", "ter", "al", "de", "com",
                                          "pro", "ex",  "per",  "ment", "ly", "or",  "in",  "es", "ed", "ble",
                                          "qu",  "str", "ight", "ou",   "ph", "sh",  "ch",  "th", "wh", "ab"};
        std::string w;
        const size_t n = 1 + below(3);
        for (size_t i = 0; i < n; ++i) w += syllables[below(std::size(syllables))];
        if (below(8) == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
        return w;
    }

    void append_sentence(std::string& out) {
        const size_t n = 5 + below(15);
        for (size_t i = 0; i < n; ++i) {
            out += i == 0 ? "" : " ";
            out += word();
            if (below(12) == 0) out += ",";
            if (below(25) == 0) out += "'s";
            if (below(30) == 0) out.append(" ").append(std::to_string(rng_() % 100000));
        }
        out += below(5) == 0 ? "? " : ". ";
    }

    void append_code(std::string& out) {
        static const char* lines[] = {"for (int i = 0; i < n; ++i) {\n",
                                      "    total += values[i] * 0.5f;\n",
                                      "}\n",
                                      "def encode(self, text):\n",
                                      "        return [t.id for t in toks]\n",
                                      "if (err != nullptr) { return -1; }\n",
                                      "\tconst auto it = map.find(key);\n",
                                      "// TODO(hearth): handle the empty case\n",
                                      "x = {\"a\": 1, \"b\": [2, 3]}\n"};
        const size_t n = 3 + below(10);
        for (size_t i = 0; i < n; ++i) out += lines[below(std::size(lines))];
    }

    void append_other_script(std::string& out) {
        static const char* runs[] = {"我想在苹果公司工作，因为他们的产品很好。",
                                     "東京は日本の首都です。",
                                     "Привет, как дела? Всё хорошо.",
                                     "مرحبا بالعالم، كيف حالك؟",
                                     "नमस्ते दुनिया, आप कैसे हैं?",
                                     "한국어 텍스트도 조금 있습니다. ",
                                     "Ça va très bien, merci! Größe über alles.",
                                     "🦙 🚀 👨‍👩‍👧 ✅ 😁 "};
        out += runs[below(std::size(runs))];
    }

    void append_paragraph(std::string& out) {
        const size_t kind = below(10);
        if (kind < 6) {
            const size_t n = 2 + below(6);
            for (size_t i = 0; i < n; ++i) append_sentence(out);
        } else if (kind < 8) {
            append_code(out);
        } else {
            append_other_script(out);
            append_sentence(out);
        }
        out += below(3) == 0 ? "\n\n" : "\n";
    }

    std::mt19937_64 rng_{20240611};
};

const std::string& mixed_text() {
    static const std::string text = TextGenerator().generate(kTextBytes);
    return text;
}

const Tokenizer& llama3() {
    static const Tokenizer tokenizer(hearth::tokenizer::llama31_vocabulary(),
                                     "built-in Llama 3.1 vocabulary");
    return tokenizer;
}

void BM_Encode10MBMixedText(benchmark::State& state) {
    const std::string& text = mixed_text();
    size_t tokens = 0;
    for (auto _ : state) {
        const auto ids = llama3().encode(text);
        tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
    state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_Encode10MBMixedText)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

// The prefix of the mixed text that encodes to 128K tokens.
std::string prompt_of_128k_tokens() {
    const std::string& text = mixed_text();
    const auto ids = llama3().encode(text, {.add_bos = false});
    const auto prefix = std::span<const int32_t>(ids).first(kPromptTokens);
    return llama3().decode(prefix);
}

void BM_Encode128KTokenPrompt(benchmark::State& state) {
    const std::string prompt = prompt_of_128k_tokens();
    size_t tokens = 0;
    for (auto _ : state) {
        const auto ids = llama3().encode(prompt, {.add_bos = false});
        tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * prompt.size()));
    state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_Encode128KTokenPrompt)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DecodeStreaming(benchmark::State& state) {
    const auto ids = llama3().encode(mixed_text().substr(0, 1 << 20));
    for (auto _ : state) {
        hearth::tokenizer::StreamingDecoder decoder(llama3());
        size_t bytes = 0;
        for (const int32_t id : ids) bytes += decoder.push(id).size();
        benchmark::DoNotOptimize(bytes);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ids.size()));
}
BENCHMARK(BM_DecodeStreaming)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--write-text") == 0 && i + 1 < argc) {
            std::ofstream(argv[++i], std::ios::binary) << mixed_text();
            continue;
        }
        args.push_back(argv[i]);
    }
    int count = static_cast<int>(args.size());
    benchmark::Initialize(&count, args.data());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
