// Splits a Jinja template into tokens the way jinja2's lexer does with Hugging Face's settings
// (trim_blocks and lstrip_blocks on, keep_trailing_newline off): text, {% %} / {{ }} tags with
// their names, literals and operators; comments and whitespace control are resolved here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::chat::jinja {

enum class TokenType { Text, BlockBegin, BlockEnd, VariableBegin, VariableEnd, Name, String, Integer, Float, Operator, End };

struct Token {
    TokenType type;
    std::string text;  // for String: the unescaped value
    int line;
};

// Throws TemplateSyntaxError on an unterminated tag, comment, string or bracket.
std::vector<Token> tokenize(std::string_view source);

struct TemplateSyntaxError {
    std::string message;
    int line;
};

}  // namespace hearth::chat::jinja
