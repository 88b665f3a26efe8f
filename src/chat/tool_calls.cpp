#include "chat/tool_calls.h"

#include <cctype>
#include <optional>

namespace hearth::chat {
namespace {

constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kFunctionOpen = "<function=";
constexpr std::string_view kFunctionClose = "</function>";

std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    return text;
}

// The end-of-turn tokens a detokenizer may leave at the end.
std::string_view strip_end_tokens(std::string_view text) {
    text = trim(text);
    for (bool stripped = true; stripped;) {
        stripped = false;
        for (std::string_view token : {"<|eom_id|>", "<|eot_id|>"}) {
            if (text.size() >= token.size() && text.substr(text.size() - token.size()) == token) {
                text = trim(text.substr(0, text.size() - token.size()));
                stripped = true;
            }
        }
    }
    return text;
}

std::optional<nlohmann::ordered_json> parse_json(std::string_view text) {
    auto json = nlohmann::ordered_json::parse(text, nullptr, false);
    if (json.is_discarded()) return std::nullopt;
    return json;
}

// {"name": ..., "parameters": {...}} (or "arguments", which models also produce).
std::optional<ToolCall> json_call(std::string_view text) {
    const auto json = parse_json(trim(text));
    if (!json || !json->is_object()) return std::nullopt;
    const auto name = json->find("name");
    if (name == json->end() || !name->is_string()) return std::nullopt;
    auto arguments = json->find("parameters");
    if (arguments == json->end()) arguments = json->find("arguments");
    ToolCall call{name->get<std::string>(), nlohmann::ordered_json::object(), false};
    if (arguments != json->end()) {
        if (arguments->is_string()) {  // arguments as a JSON-encoded string
            auto decoded = parse_json(arguments->get<std::string>());
            if (!decoded || !decoded->is_object()) return std::nullopt;
            call.arguments = *decoded;
        } else if (arguments->is_object()) {
            call.arguments = *arguments;
        } else {
            return std::nullopt;
        }
    }
    return call;
}

// A Python literal argument of a built-in call: a quoted string, a number, True/False/None.
class PythonArgumentScanner {
  public:
    explicit PythonArgumentScanner(std::string_view text) : text_(text) {}

    std::optional<nlohmann::ordered_json> keyword_arguments() {
        nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
        skip_space();
        while (pos_ < text_.size()) {
            const auto name = identifier();
            skip_space();
            if (!name || !consume('=')) return std::nullopt;
            skip_space();
            auto value = literal();
            if (!value) return std::nullopt;
            arguments[*name] = std::move(*value);
            skip_space();
            if (pos_ < text_.size() && !consume(',')) return std::nullopt;
            skip_space();
        }
        return arguments;
    }

  private:
    void skip_space() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    bool consume(char c) {
        if (pos_ >= text_.size() || text_[pos_] != c) return false;
        ++pos_;
        return true;
    }
    std::optional<std::string> identifier() {
        const size_t start = pos_;
        while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) ++pos_;
        if (pos_ == start || std::isdigit(static_cast<unsigned char>(text_[start]))) return std::nullopt;
        return std::string(text_.substr(start, pos_ - start));
    }
    std::optional<nlohmann::ordered_json> literal() {
        if (pos_ >= text_.size()) return std::nullopt;
        const char c = text_[pos_];
        if (c == '"' || c == '\'') return quoted(c);
        const size_t start = pos_;
        while (pos_ < text_.size() && text_[pos_] != ',' && !std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
        const std::string_view word = text_.substr(start, pos_ - start);
        if (word == "True") return true;
        if (word == "False") return false;
        if (word == "None") return nullptr;
        auto number = parse_json(word);
        if (number && number->is_number()) return number;
        return std::nullopt;
    }
    std::optional<nlohmann::ordered_json> quoted(char quote) {
        std::string value;
        for (++pos_; pos_ < text_.size(); ++pos_) {
            char c = text_[pos_];
            if (c == quote) {
                ++pos_;
                return value;
            }
            if (c == '\\' && pos_ + 1 < text_.size()) {
                c = text_[++pos_];
                value += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
            } else {
                value += c;
            }
        }
        return std::nullopt;
    }

    std::string_view text_;
    size_t pos_ = 0;
};

// brave_search.call(query="...")
std::optional<ToolCall> builtin_call(std::string_view text) {
    text = trim(text);
    const size_t dot = text.find(".call(");
    if (dot == std::string_view::npos || text.back() != ')') return std::nullopt;
    const std::string_view name = text.substr(0, dot);
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string_view::npos)
        return std::nullopt;
    const std::string_view inside = text.substr(dot + 6, text.size() - dot - 7);
    auto arguments = PythonArgumentScanner(inside).keyword_arguments();
    if (!arguments) return std::nullopt;
    return ToolCall{std::string(name), std::move(*arguments), true};
}

ParsedToolCalls parse_python_tag(std::string_view before, std::string_view after) {
    ParsedToolCalls result;
    result.content = std::string(trim(before));
    if (auto call = builtin_call(after)) {
        result.tool_calls.push_back(std::move(*call));
    } else if (auto json = json_call(after)) {
        result.tool_calls.push_back(std::move(*json));
    } else {
        nlohmann::ordered_json arguments = {{"code", std::string(trim(after))}};
        result.tool_calls.push_back(ToolCall{"code_interpreter", std::move(arguments), true});
    }
    return result;
}

// <function=name>{...}</function>, possibly several, with text around them.
std::optional<ParsedToolCalls> parse_function_tags(std::string_view text) {
    ParsedToolCalls result;
    std::string content;
    size_t pos = 0;
    while (true) {
        const size_t open = text.find(kFunctionOpen, pos);
        if (open == std::string_view::npos) break;
        const size_t name_end = text.find('>', open);
        const size_t close = name_end == std::string_view::npos ? name_end : text.find(kFunctionClose, name_end);
        if (close == std::string_view::npos) return std::nullopt;
        const std::string_view name = text.substr(open + kFunctionOpen.size(), name_end - open - kFunctionOpen.size());
        const auto arguments = parse_json(trim(text.substr(name_end + 1, close - name_end - 1)));
        if (name.empty() || !arguments || !arguments->is_object()) return std::nullopt;
        content += text.substr(pos, open - pos);
        result.tool_calls.push_back(ToolCall{std::string(name), *arguments, false});
        pos = close + kFunctionClose.size();
    }
    if (result.tool_calls.empty()) return std::nullopt;
    content += text.substr(pos);
    result.content = std::string(trim(content));
    return result;
}

// One JSON call, or several separated by ';' as some fine-tunes emit.
std::optional<ParsedToolCalls> parse_json_calls(std::string_view text) {
    if (text.empty() || text.front() != '{') return std::nullopt;
    ParsedToolCalls result;
    if (auto call = json_call(text)) {
        result.tool_calls.push_back(std::move(*call));
        return result;
    }
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(';', start);
        if (end == std::string_view::npos) end = text.size();
        auto call = json_call(text.substr(start, end - start));
        if (!call) return std::nullopt;
        result.tool_calls.push_back(std::move(*call));
        start = end + 1;
    }
    return result;
}

}  // namespace

ParsedToolCalls parse_llama31_tool_calls(std::string_view text) {
    const std::string_view body = strip_end_tokens(text);
    if (const size_t tag = body.find(kPythonTag); tag != std::string_view::npos)
        return parse_python_tag(body.substr(0, tag), body.substr(tag + kPythonTag.size()));
    if (auto tagged = parse_function_tags(body)) return std::move(*tagged);
    if (auto json = parse_json_calls(body)) return std::move(*json);
    return ParsedToolCalls{std::string(text), {}};
}

}  // namespace hearth::chat
