// Pre-tokenizers: split text into the pieces that BPE encodes one at a time. Each is a state
// machine equivalent to a Hugging Face `Split` regex (behavior "Isolated"), run over code
// points with the classes of unicode.h; tests compare them with the regexes run by PCRE2.
//
//   llama-bpe (Llama 3.x): (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//                          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2 (Qwen 2/2.5/3):  the same with \p{N} instead of \p{N}{1,3}
//   gpt-2:                 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// (?i) folds ASCII only here, as Oniguruma does for these patterns: "'ſ" is no contraction.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace hearth::tokenizer {

enum class PreTokenizer { Llama3, Qwen2, Gpt2 };

// Appends to `piece_ends` the end offset of each piece of `text` (well-formed UTF-8), in order;
// pieces are contiguous and cover the text. Linear in the text's length.
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<uint32_t>& piece_ends);

}  // namespace hearth::tokenizer
