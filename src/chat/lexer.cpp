#include "chat/lexer.h"

#include <array>
#include <cctype>
#include <optional>

#include <fmt/format.h>

namespace hearth::chat::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// jinja2 turns \r\n and \r into \n and drops one trailing newline (keep_trailing_newline off).
std::string normalize_newlines(std::string_view source) {
    std::string out;
    out.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
        if (source[i] == '\r') {
            if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
            out += '\n';
        } else {
            out += source[i];
        }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

void append_utf8(std::string& out, uint32_t code) {
    if (code < 0x80) {
        out += static_cast<char>(code);
    } else if (code < 0x800) {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
        out += static_cast<char>(0xE0 | (code >> 12));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (code >> 18));
        out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
    }
}

class Lexer {
  public:
    explicit Lexer(std::string_view source) : source_(normalize_newlines(source)) {}

    std::vector<Token> run() {
        while (pos_ < source_.size()) lex_text_and_tag();
        tokens_.push_back({TokenType::End, "", line_});
        return std::move(tokens_);
    }

  private:
    enum class Tag { Block, Variable, Comment };

    [[noreturn]] void error(std::string message) const { throw TemplateSyntaxError{std::move(message), line_}; }

    void emit(TokenType type, std::string text) { tokens_.push_back({type, std::move(text), line_}); }

    void emit_text(std::string text) {
        if (text.empty()) return;
        emit(TokenType::Text, text);
        advance_lines(text);
    }

    void advance_lines(std::string_view text) {
        for (char c : text) line_ += c == '\n';
    }

    // Whitespace control before a tag: `{%-` strips all whitespace; otherwise lstrip_blocks
    // removes spaces and tabs between a line start and a block or comment tag.
    std::string strip_before_tag(std::string text, char sign, Tag tag) const {
        if (sign == '-') {
            size_t end = text.size();
            while (end > 0 && is_space(text[end - 1])) --end;
            return text.substr(0, end);
        }
        if (sign == '+' || tag == Tag::Variable) return text;
        const size_t line_start = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if (line_start == 0 && !line_starting_) return text;
        if (line_start == text.size()) return text;
        for (size_t i = line_start; i < text.size(); ++i)
            if (!is_space(text[i])) return text;
        return text.substr(0, line_start);
    }

    void lex_text_and_tag() {
        const size_t tag_pos = find_tag_start(pos_);
        if (tag_pos == std::string::npos) {
            emit_text(source_.substr(pos_));
            pos_ = source_.size();
            return;
        }
        const char kind = source_[tag_pos + 1];
        const Tag tag = kind == '%' ? Tag::Block : kind == '{' ? Tag::Variable : Tag::Comment;
        size_t after = tag_pos + 2;
        const char sign = after < source_.size() && (source_[after] == '-' || source_[after] == '+') ? source_[after] : 0;
        if (sign) ++after;
        std::string text = source_.substr(pos_, tag_pos - pos_);
        if (tag == Tag::Block && lex_raw_block(text, sign, after)) return;
        std::string kept = strip_before_tag(text, sign, tag);
        emit_text(kept);
        advance_lines(std::string_view(text).substr(kept.size()));
        pos_ = after;
        line_starting_ = false;
        if (tag == Tag::Comment) {
            lex_comment();
        } else {
            lex_tag(tag);
        }
    }

    size_t find_tag_start(size_t from) const {
        for (size_t i = source_.find('{', from); i != std::string::npos; i = source_.find('{', i + 1)) {
            if (i + 1 < source_.size() && (source_[i + 1] == '%' || source_[i + 1] == '{' || source_[i + 1] == '#'))
                return i;
        }
        return std::string::npos;
    }

    // Length of a block end (`+%}`, `-%}` and following whitespace, or `%}` and one newline
    // under trim_blocks) at `at`, or nullopt.
    std::optional<size_t> block_end_at(size_t at, std::string_view close) const {
        const std::string_view rest = std::string_view(source_).substr(at);
        if (rest.size() > close.size() && rest[0] == '+' && rest.substr(1, close.size()) == close)
            return close.size() + 1;
        if (rest.size() > close.size() && rest[0] == '-' && rest.substr(1, close.size()) == close) {
            size_t length = close.size() + 1;
            while (length < rest.size() && is_space(rest[length])) ++length;
            return length;
        }
        if (rest.substr(0, close.size()) == close) {
            return close.size() + (rest.size() > close.size() && rest[close.size()] == '\n' ? 1 : 0);
        }
        return std::nullopt;
    }

    void lex_comment() {
        for (size_t i = pos_; i < source_.size(); ++i) {
            if (auto length = block_end_at(i, "#}")) {
                const std::string_view consumed = std::string_view(source_).substr(pos_, i + *length - pos_);
                advance_lines(consumed);
                line_starting_ = consumed.back() == '\n';
                pos_ = i + *length;
                return;
            }
        }
        error("Missing end of comment tag");
    }

    // `{% raw %}...{% endraw %}`: the text between is emitted as it is.
    bool lex_raw_block(const std::string& text_before, char sign, size_t after) {
        size_t i = after;
        while (i < source_.size() && is_space(source_[i])) ++i;
        if (source_.compare(i, 3, "raw") != 0) return false;
        i += 3;
        while (i < source_.size() && is_space(source_[i])) ++i;
        size_t body = 0;
        if (source_.compare(i, 3, "-%}") == 0) {
            body = i + 3;
            while (body < source_.size() && is_space(source_[body])) ++body;
        } else if (source_.compare(i, 2, "%}") == 0) {
            body = i + 2;
        } else {
            return false;
        }
        std::string kept = strip_before_tag(text_before, sign, Tag::Block);
        emit_text(kept);
        advance_lines(std::string_view(text_before).substr(kept.size()));
        advance_lines(std::string_view(source_).substr(after, body - after));
        for (size_t end = source_.find("{%", body); end != std::string::npos; end = source_.find("{%", end + 1)) {
            size_t j = end + 2;
            const char end_sign = j < source_.size() && (source_[j] == '-' || source_[j] == '+') ? source_[j] : 0;
            if (end_sign) ++j;
            while (j < source_.size() && is_space(source_[j])) ++j;
            if (source_.compare(j, 6, "endraw") != 0) continue;
            j += 6;
            while (j < source_.size() && is_space(source_[j])) ++j;
            const auto length = block_end_at(j, "%}");
            if (!length) continue;
            line_starting_ = false;
            const std::string raw_text = source_.substr(body, end - body);
            std::string raw_kept = strip_before_tag(raw_text, end_sign, Tag::Block);
            emit_text(raw_kept);
            advance_lines(std::string_view(raw_text).substr(raw_kept.size()));
            line_starting_ = source_[j + *length - 1] == '\n';
            advance_lines(std::string_view(source_).substr(end, j + *length - end));
            pos_ = j + *length;
            return true;
        }
        error("Missing end of raw directive");
    }

    void lex_tag(Tag tag) {
        emit(tag == Tag::Block ? TokenType::BlockBegin : TokenType::VariableBegin, "");
        std::vector<char> open_brackets;
        while (true) {
            while (pos_ < source_.size() && is_space(source_[pos_])) advance_lines(source_.substr(pos_++, 1));
            if (pos_ >= source_.size()) error(tag == Tag::Block ? "unexpected end of template, expected end of block" : "unexpected end of template, expected end of print statement");
            if (open_brackets.empty() && lex_tag_end(tag)) return;
            lex_tag_token(open_brackets);
        }
    }

    bool lex_tag_end(Tag tag) {
        if (tag == Tag::Block) {
            const auto length = block_end_at(pos_, "%}");
            if (!length) return false;
            emit(TokenType::BlockEnd, "");
            const std::string_view consumed = std::string_view(source_).substr(pos_, *length);
            advance_lines(consumed);
            line_starting_ = consumed.back() == '\n';
            pos_ += *length;
            return true;
        }
        if (source_.compare(pos_, 2, "}}") == 0) {
            emit(TokenType::VariableEnd, "");
            pos_ += 2;
            line_starting_ = false;
            return true;
        }
        if (source_.compare(pos_, 3, "-}}") == 0) {
            emit(TokenType::VariableEnd, "");
            size_t end = pos_ + 3;
            while (end < source_.size() && is_space(source_[end])) ++end;
            advance_lines(std::string_view(source_).substr(pos_, end - pos_));
            line_starting_ = source_[end - 1] == '\n';
            pos_ = end;
            return true;
        }
        return false;
    }

    void lex_tag_token(std::vector<char>& open_brackets) {
        const char c = source_[pos_];
        if (std::isdigit(static_cast<unsigned char>(c))) return lex_number();
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            const size_t start = pos_;
            while (pos_ < source_.size() && (std::isalnum(static_cast<unsigned char>(source_[pos_])) || source_[pos_] == '_')) ++pos_;
            return emit(TokenType::Name, source_.substr(start, pos_ - start));
        }
        if (c == '\'' || c == '"') return lex_string(c);
        static constexpr std::array<std::string_view, 6> kTwoCharOperators = {"//", "**", "==", "!=", ">=", "<="};
        for (std::string_view op : kTwoCharOperators) {
            if (source_.compare(pos_, 2, op) == 0) {
                pos_ += 2;
                return emit(TokenType::Operator, std::string(op));
            }
        }
        if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos)
            error(fmt::format("unexpected char '{}'", c));
        track_bracket(c, open_brackets);
        ++pos_;
        emit(TokenType::Operator, std::string(1, c));
    }

    void track_bracket(char c, std::vector<char>& open_brackets) const {
        if (c == '(' || c == '[' || c == '{') open_brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
        if (c == ')' || c == ']' || c == '}') {
            if (open_brackets.empty()) error(fmt::format("unexpected '{}'", c));
            if (open_brackets.back() != c) error(fmt::format("unexpected '{}', expected '{}'", c, open_brackets.back()));
            open_brackets.pop_back();
        }
    }

    size_t digits_end(size_t at) const {  // digits with single underscores between them
        while (at < source_.size() && (std::isdigit(static_cast<unsigned char>(source_[at])) ||
                                       (source_[at] == '_' && at + 1 < source_.size() && std::isdigit(static_cast<unsigned char>(source_[at + 1])))))
            ++at;
        return at;
    }

    void lex_number() {
        const size_t start = pos_;
        size_t end = digits_end(pos_);
        bool is_float = false;
        const bool after_dot = start > 0 && source_[start - 1] == '.';
        if (!after_dot && end + 1 < source_.size() && source_[end] == '.' && std::isdigit(static_cast<unsigned char>(source_[end + 1]))) {
            end = digits_end(end + 1);
            is_float = true;
        }
        if (!after_dot && end < source_.size() && (source_[end] == 'e' || source_[end] == 'E')) {
            size_t exponent = end + 1;
            if (exponent < source_.size() && (source_[exponent] == '+' || source_[exponent] == '-')) ++exponent;
            if (exponent < source_.size() && std::isdigit(static_cast<unsigned char>(source_[exponent]))) {
                end = digits_end(exponent);
                is_float = true;
            }
        }
        std::string text;
        for (size_t i = start; i < end; ++i)
            if (source_[i] != '_') text += source_[i];
        pos_ = end;
        emit(is_float ? TokenType::Float : TokenType::Integer, text);
    }

    // Python string-literal escapes, as jinja2 decodes them (unicode-escape).
    void lex_string(char quote) {
        const int start_line = line_;
        std::string value;
        size_t i = pos_ + 1;
        for (; i < source_.size() && source_[i] != quote; ++i) {
            if (source_[i] != '\\') {
                value += source_[i];
                continue;
            }
            if (++i >= source_.size()) break;
            i = decode_escape(i, value);
        }
        if (i >= source_.size()) {
            line_ = start_line;
            error("unexpected char '" + std::string(1, quote) + "'");
        }
        tokens_.push_back({TokenType::String, std::move(value), start_line});
        advance_lines(std::string_view(source_).substr(pos_, i + 1 - pos_));
        pos_ = i + 1;
    }

    size_t decode_escape(size_t i, std::string& value) const {
        const char c = source_[i];
        switch (c) {
            case '\n': return i;
            case '\\': value += '\\'; return i;
            case '\'': value += '\''; return i;
            case '"': value += '"'; return i;
            case 'a': value += '\a'; return i;
            case 'b': value += '\b'; return i;
            case 'f': value += '\f'; return i;
            case 'n': value += '\n'; return i;
            case 'r': value += '\r'; return i;
            case 't': value += '\t'; return i;
            case 'v': value += '\v'; return i;
            case 'x': return decode_hex_escape(i, 2, value);
            case 'u': return decode_hex_escape(i, 4, value);
            case 'U': return decode_hex_escape(i, 8, value);
            default: break;
        }
        if (c >= '0' && c <= '7') {
            uint32_t code = 0;
            size_t end = i;
            while (end < i + 3 && end < source_.size() && source_[end] >= '0' && source_[end] <= '7') code = code * 8 + (source_[end++] - '0');
            append_utf8(value, code);
            return end - 1;
        }
        value += '\\';
        value += c;
        return i;
    }

    size_t decode_hex_escape(size_t i, size_t digits, std::string& value) const {
        uint32_t code = 0;
        for (size_t d = 1; d <= digits; ++d) {
            const char h = i + d < source_.size() ? source_[i + d] : 0;
            if (!std::isxdigit(static_cast<unsigned char>(h))) error(fmt::format("truncated \\{} escape in a string", source_[i]));
            code = code * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : std::tolower(h) - 'a' + 10);
        }
        if (code > 0x10FFFF) error("illegal Unicode character in a string");
        append_utf8(value, code);
        return i + digits;
    }

    std::string source_;
    size_t pos_ = 0;
    int line_ = 1;
    bool line_starting_ = true;
    std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace hearth::chat::jinja
