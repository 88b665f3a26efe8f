// A recursive-descent parser for the Jinja subset that chat templates use, following
// jinja2/parser.py's precedence: or < and < not < comparisons < + - < ~ < * / // % < ** <
// unary - + < primary with postfix (. [] ()) and filters / tests.
#include <algorithm>
#include <array>
#include <cstdlib>

#include <fmt/format.h>

#include "chat/ast.h"
#include "chat/lexer.h"

namespace hearth::chat::jinja {
namespace {

// Deeply nested brackets or blocks would otherwise recurse without limit.
constexpr int kMaxParseNesting = 100;

// Tags jinja2 has that a chat template has no use for; naming them gives a clear error.
constexpr std::array<std::string_view, 9> kUnsupportedTags = {"extends", "block",      "include", "import", "from",
                                                                "do",      "autoescape", "print",   "trans"};

class Parser {
  public:
    explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

    std::unique_ptr<Template> run() {
        auto result = std::make_unique<Template>();
        result->body = parse_body({});
        return result;
    }

  private:
    struct NestingGuard {
        explicit NestingGuard(Parser& p) : parser(p) {
            if (++parser.nesting_ > kMaxParseNesting) parser.error(fmt::format("nested deeper than {} levels", kMaxParseNesting));
        }
        ~NestingGuard() { --parser.nesting_; }
        Parser& parser;
    };

    const Token& current() const { return tokens_[pos_]; }
    const Token& peek(size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
    Token next() { return pos_ + 1 < tokens_.size() ? tokens_[pos_++] : tokens_[pos_]; }

    [[noreturn]] void error(std::string message) const { throw TemplateSyntaxError{std::move(message), current().line}; }

    bool at_operator(std::string_view op) const { return current().type == TokenType::Operator && current().text == op; }
    bool at_name(std::string_view name) const { return current().type == TokenType::Name && current().text == name; }

    std::string describe(const Token& token) const {
        switch (token.type) {
            case TokenType::End: return "end of template";
            case TokenType::BlockEnd: return "end of statement block";
            case TokenType::VariableEnd: return "end of print statement";
            case TokenType::String: return "string";
            default: return "'" + token.text + "'";
        }
    }

    void expect_operator(std::string_view op) {
        if (!at_operator(op)) error(fmt::format("expected '{}', got {}", op, describe(current())));
        next();
    }
    void expect(TokenType type, std::string_view what) {
        if (current().type != type) error(fmt::format("expected {}, got {}", what, describe(current())));
        next();
    }
    std::string expect_name() {
        if (current().type != TokenType::Name) error(fmt::format("expected a name, got {}", describe(current())));
        return next().text;
    }
    bool skip_operator(std::string_view op) {
        if (!at_operator(op)) return false;
        next();
        return true;
    }
    bool skip_name(std::string_view name) {
        if (!at_name(name)) return false;
        next();
        return true;
    }

    ExprPtr make(ExprKind kind, int line) {
        auto expr = std::make_unique<Expr>();
        expr->kind = kind;
        expr->line = line;
        return expr;
    }

    // ---- statements ----

    // Parses until a block tag named in `end_tags` (left unconsumed, after its {%) or the end.
    Body parse_body(std::vector<std::string_view> end_tags) {
        NestingGuard guard(*this);
        Body body;
        while (true) {
            const Token& token = current();
            if (token.type == TokenType::End) {
                if (!end_tags.empty()) error(fmt::format("unexpected end of template, expected '{}'", end_tags.back()));
                return body;
            }
            if (token.type == TokenType::Text) {
                auto stmt = std::make_unique<Stmt>();
                stmt->kind = StmtKind::Text;
                stmt->line = token.line;
                stmt->text = token.text;
                body.push_back(std::move(stmt));
                next();
            } else if (token.type == TokenType::VariableBegin) {
                next();
                auto stmt = std::make_unique<Stmt>();
                stmt->kind = StmtKind::Print;
                stmt->line = token.line;
                stmt->expr = parse_tuple(true);
                expect(TokenType::VariableEnd, "end of print statement");
                body.push_back(std::move(stmt));
            } else if (token.type == TokenType::BlockBegin) {
                const Token& tag = peek();
                if (tag.type == TokenType::Name &&
                    std::find(end_tags.begin(), end_tags.end(), tag.text) != end_tags.end()) {
                    next();
                    return body;
                }
                next();
                body.push_back(parse_statement());
            } else {
                error(fmt::format("unexpected {}", describe(token)));
            }
        }
    }

    void end_block() { expect(TokenType::BlockEnd, "end of statement block"); }

    StmtPtr parse_statement() {
        if (current().type != TokenType::Name) error("tag name expected");
        const Token tag = next();
        const std::string& name = tag.text;
        auto stmt = std::make_unique<Stmt>();
        stmt->line = tag.line;
        if (name == "if") return parse_if(std::move(stmt));
        if (name == "for") return parse_for(std::move(stmt));
        if (name == "set") return parse_set(std::move(stmt));
        if (name == "macro") return parse_macro(std::move(stmt));
        if (name == "call") return parse_call_block(std::move(stmt));
        if (name == "filter") return parse_filter_block(std::move(stmt));
        if (name == "with") return parse_with(std::move(stmt));
        if (name == "break" || name == "continue") {
            if (loop_nesting_ == 0) error(fmt::format("'{}' outside of a for loop", name));
            stmt->kind = name == "break" ? StmtKind::Break : StmtKind::Continue;
            end_block();
            return stmt;
        }
        if (std::find(kUnsupportedTags.begin(), kUnsupportedTags.end(), name) != kUnsupportedTags.end())
            throw TemplateSyntaxError{fmt::format("the '{}' tag is not supported in chat templates", name), tag.line};
        throw TemplateSyntaxError{fmt::format("unknown tag '{}'", name), tag.line};
    }

    StmtPtr parse_if(StmtPtr stmt) {
        stmt->kind = StmtKind::If;
        while (true) {
            stmt->conditions.push_back(parse_tuple(false));
            end_block();
            stmt->bodies.push_back(parse_body({"elif", "else", "endif"}));
            const std::string tag = next().text;
            if (tag == "elif") continue;
            if (tag == "else") {
                end_block();
                stmt->bodies.push_back(parse_body({"endif"}));
                next();
            }
            end_block();
            return stmt;
        }
    }

    Target parse_target(bool allow_attribute) {
        Target target;
        const bool parenthesized = skip_operator("(");
        target.names.push_back(expect_name());
        if (allow_attribute && at_operator(".")) {
            next();
            target.attribute = expect_name();
            return target;
        }
        while (skip_operator(",")) {
            if (current().type != TokenType::Name || at_name("in")) break;
            target.names.push_back(expect_name());
        }
        if (parenthesized) expect_operator(")");
        return target;
    }

    StmtPtr parse_for(StmtPtr stmt) {
        stmt->kind = StmtKind::For;
        stmt->target = parse_target(false);
        if (!skip_name("in")) error(fmt::format("expected 'in', got {}", describe(current())));
        stmt->expr = parse_tuple(false);
        if (skip_name("if")) stmt->condition = parse_expression(true);
        if (at_name("recursive")) error("recursive for loops are not supported in chat templates");
        end_block();
        ++loop_nesting_;
        stmt->bodies.push_back(parse_body({"else", "endfor"}));
        --loop_nesting_;
        if (next().text == "else") {
            end_block();
            stmt->bodies.push_back(parse_body({"endfor"}));
            next();
        }
        end_block();
        return stmt;
    }

    StmtPtr parse_set(StmtPtr stmt) {
        stmt->target = parse_target(true);
        if (skip_operator("=")) {
            stmt->kind = StmtKind::Set;
            stmt->expr = parse_tuple(true);
            end_block();
            return stmt;
        }
        stmt->kind = StmtKind::SetBlock;
        if (stmt->target.names.size() != 1 || !stmt->target.attribute.empty()) error("a block set takes one plain name");
        if (at_operator("|")) stmt->expr = parse_filters(nullptr);
        end_block();
        stmt->bodies.push_back(parse_body({"endset"}));
        next();
        end_block();
        return stmt;
    }

    std::vector<Parameter> parse_parameters() {
        std::vector<Parameter> parameters;
        expect_operator("(");
        while (!at_operator(")")) {
            if (!parameters.empty()) expect_operator(",");
            if (at_operator(")")) break;
            Parameter parameter;
            parameter.name = expect_name();
            if (skip_operator("=")) parameter.default_value = parse_expression(true);
            parameters.push_back(std::move(parameter));
        }
        next();
        return parameters;
    }

    StmtPtr parse_macro(StmtPtr stmt) {
        stmt->kind = StmtKind::Macro;
        stmt->text = expect_name();
        stmt->parameters = parse_parameters();
        end_block();
        const int saved_loops = std::exchange(loop_nesting_, 0);
        stmt->bodies.push_back(parse_body({"endmacro"}));
        loop_nesting_ = saved_loops;
        next();
        end_block();
        return stmt;
    }

    StmtPtr parse_call_block(StmtPtr stmt) {
        stmt->kind = StmtKind::CallBlock;
        if (at_operator("(")) stmt->parameters = parse_parameters();
        stmt->expr = parse_expression(true);
        if (stmt->expr->kind != ExprKind::Call) error("expected a call after 'call'");
        end_block();
        stmt->bodies.push_back(parse_body({"endcall"}));
        next();
        end_block();
        return stmt;
    }

    StmtPtr parse_filter_block(StmtPtr stmt) {
        stmt->kind = StmtKind::FilterBlock;
        stmt->expr = parse_filters(nullptr, true);
        end_block();
        stmt->bodies.push_back(parse_body({"endfilter"}));
        next();
        end_block();
        return stmt;
    }

    StmtPtr parse_with(StmtPtr stmt) {
        stmt->kind = StmtKind::With;
        while (current().type != TokenType::BlockEnd) {
            if (!stmt->assignments.empty()) expect_operator(",");
            std::string name = expect_name();
            expect_operator("=");
            stmt->assignments.emplace_back(std::move(name), parse_expression(true));
        }
        end_block();
        stmt->bodies.push_back(parse_body({"endwith"}));
        next();
        end_block();
        return stmt;
    }

    // ---- expressions ----

    bool at_expression_end() const {
        const auto type = current().type;
        return type == TokenType::BlockEnd || type == TokenType::VariableEnd || type == TokenType::End ||
               at_operator(")") || at_operator("]") || at_operator("}") || at_name("if") || at_name("in") ||
               at_name("recursive");
    }

    // `a, b` is a tuple wherever jinja2 calls parse_tuple (print, set, for, if).
    ExprPtr parse_tuple(bool with_conditional) {
        const int line = current().line;
        ExprPtr first = parse_expression(with_conditional);
        if (!at_operator(",")) return first;
        auto tuple = make(ExprKind::TupleLiteral, line);
        tuple->operands.push_back(std::move(first));
        while (skip_operator(",")) {
            if (at_expression_end()) break;
            tuple->operands.push_back(parse_expression(with_conditional));
        }
        return tuple;
    }

    ExprPtr parse_expression(bool with_conditional) {
        NestingGuard guard(*this);
        ExprPtr expr = parse_or();
        if (!with_conditional) return expr;
        while (at_name("if")) {
            auto conditional = make(ExprKind::Conditional, next().line);
            conditional->operands.push_back(parse_or());
            conditional->operands.push_back(std::move(expr));
            conditional->operands.push_back(skip_name("else") ? parse_expression(true) : nullptr);
            expr = std::move(conditional);
        }
        return expr;
    }

    ExprPtr binary(ExprKind kind, std::string op, ExprPtr left, ExprPtr right, int line) {
        auto node = make(kind, line);
        node->name = std::move(op);
        node->operands.push_back(std::move(left));
        node->operands.push_back(std::move(right));
        return node;
    }

    ExprPtr parse_or() {
        ExprPtr left = parse_and();
        while (at_name("or")) {
            const int line = next().line;
            left = binary(ExprKind::Or, "or", std::move(left), parse_and(), line);
        }
        return left;
    }

    ExprPtr parse_and() {
        ExprPtr left = parse_not();
        while (at_name("and")) {
            const int line = next().line;
            left = binary(ExprKind::And, "and", std::move(left), parse_not(), line);
        }
        return left;
    }

    ExprPtr parse_not() {
        if (!at_name("not")) return parse_compare();
        NestingGuard guard(*this);
        auto node = make(ExprKind::Not, next().line);
        node->operands.push_back(parse_not());
        return node;
    }

    ExprPtr parse_compare() {
        const int line = current().line;
        ExprPtr first = parse_math1();
        ExprPtr compare;
        while (true) {
            std::string op;
            if (current().type == TokenType::Operator &&
                (current().text == "==" || current().text == "!=" || current().text == "<" || current().text == "<=" ||
                 current().text == ">" || current().text == ">=")) {
                op = next().text;
            } else if (at_name("in")) {
                next();
                op = "in";
            } else if (at_name("not") && peek().type == TokenType::Name && peek().text == "in") {
                next();
                next();
                op = "notin";
            } else {
                break;
            }
            if (!compare) {
                compare = make(ExprKind::Compare, line);
                compare->operands.push_back(std::move(first));
            }
            compare->compare_ops.push_back(op);
            compare->operands.push_back(parse_math1());
        }
        return compare ? std::move(compare) : std::move(first);
    }

    template <typename Next>
    ExprPtr parse_binary_level(std::initializer_list<std::string_view> ops, Next parse_next) {
        ExprPtr left = (this->*parse_next)();
        while (current().type == TokenType::Operator &&
               std::find(ops.begin(), ops.end(), current().text) != ops.end()) {
            const Token op = next();
            left = binary(ExprKind::Binary, op.text, std::move(left), (this->*parse_next)(), op.line);
        }
        return left;
    }

    ExprPtr parse_math1() { return parse_binary_level({"+", "-"}, &Parser::parse_concat); }
    ExprPtr parse_concat() { return parse_binary_level({"~"}, &Parser::parse_math2); }
    ExprPtr parse_math2() { return parse_binary_level({"*", "/", "//", "%"}, &Parser::parse_pow); }
    ExprPtr parse_pow() { return parse_binary_level({"**"}, &Parser::parse_unary_with_filters); }
    ExprPtr parse_unary_with_filters() { return parse_unary(true); }

    ExprPtr parse_unary(bool with_filters) {
        NestingGuard guard(*this);
        ExprPtr node;
        if (at_operator("-") || at_operator("+")) {
            const Token op = next();
            node = make(op.text == "-" ? ExprKind::Negate : ExprKind::Plus, op.line);
            node->operands.push_back(parse_unary(false));
        } else {
            node = parse_primary();
        }
        node = parse_postfix(std::move(node));
        return with_filters ? parse_filters_and_tests(std::move(node)) : std::move(node);
    }

    ExprPtr parse_primary() {
        const Token token = current();
        switch (token.type) {
            case TokenType::Name: {
                next();
                auto node = make(ExprKind::Literal, token.line);
                if (token.text == "true" || token.text == "True") node->literal = true;
                else if (token.text == "false" || token.text == "False") node->literal = false;
                else if (token.text == "none" || token.text == "None") node->literal = None{};
                else {
                    node->kind = ExprKind::Name;
                    node->name = token.text;
                }
                return node;
            }
            case TokenType::String: {
                std::string text;
                while (current().type == TokenType::String) text += next().text;
                auto node = make(ExprKind::Literal, token.line);
                node->literal = std::move(text);
                return node;
            }
            case TokenType::Integer:
            case TokenType::Float: return parse_number();
            default: break;
        }
        if (at_operator("(")) {
            next();
            if (skip_operator(")")) return make(ExprKind::TupleLiteral, token.line);
            ExprPtr inner = parse_tuple(true);
            expect_operator(")");
            return inner;
        }
        if (at_operator("[")) return parse_list();
        if (at_operator("{")) return parse_dict();
        error(fmt::format("unexpected {}", describe(token)));
    }

    ExprPtr parse_number() {
        const Token token = next();
        auto node = make(ExprKind::Literal, token.line);
        if (token.type == TokenType::Float) {
            // strtod, like Python's float(), gives inf past the double range and 0 below it
            // (std::stod would throw). hearth never changes the C locale, so '.' is the point.
            node->literal = std::strtod(token.text.c_str(), nullptr);
            return node;
        }
        int64_t value = 0;
        for (char digit : token.text) {
            if (__builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, digit - '0', &value))
                throw TemplateSyntaxError{fmt::format("integer {} is too large", token.text), token.line};
        }
        node->literal = value;
        return node;
    }

    ExprPtr parse_list() {
        auto node = make(ExprKind::ListLiteral, next().line);
        while (!at_operator("]")) {
            if (!node->operands.empty()) expect_operator(",");
            if (at_operator("]")) break;
            node->operands.push_back(parse_expression(true));
        }
        next();
        return node;
    }

    ExprPtr parse_dict() {
        auto node = make(ExprKind::DictLiteral, next().line);
        while (!at_operator("}")) {
            if (!node->operands.empty()) expect_operator(",");
            if (at_operator("}")) break;
            node->operands.push_back(parse_expression(true));
            expect_operator(":");
            node->operands.push_back(parse_expression(true));
        }
        next();
        return node;
    }

    ExprPtr parse_postfix(ExprPtr node) {
        while (true) {
            if (at_operator(".")) {
                const int line = next().line;
                if (current().type == TokenType::Integer) {
                    auto index = parse_number();
                    auto item = make(ExprKind::GetItem, line);
                    item->operands.push_back(std::move(node));
                    item->operands.push_back(std::move(index));
                    node = std::move(item);
                    continue;
                }
                auto attr = make(ExprKind::GetAttr, line);
                attr->name = expect_name();
                attr->operands.push_back(std::move(node));
                node = std::move(attr);
            } else if (at_operator("[")) {
                node = parse_subscript(std::move(node));
            } else if (at_operator("(")) {
                node = parse_call(std::move(node));
            } else {
                return node;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr target) {
        NestingGuard guard(*this);
        const int line = next().line;
        std::array<ExprPtr, 3> parts;
        bool is_slice = false;
        for (size_t part = 0; part < 3; ++part) {
            if (!at_operator(":") && !at_operator("]")) parts[part] = parse_expression(true);
            if (part == 2 || !skip_operator(":")) break;
            is_slice = true;
        }
        expect_operator("]");
        auto node = make(is_slice ? ExprKind::Slice : ExprKind::GetItem, line);
        node->operands.push_back(std::move(target));
        if (!is_slice && !parts[0]) error("expected an index inside []");
        node->operands.push_back(std::move(parts[0]));
        if (is_slice) {
            node->operands.push_back(std::move(parts[1]));
            node->operands.push_back(std::move(parts[2]));
        }
        return node;
    }

    // Arguments of a call, filter or test: positional then keyword (`name=value`).
    void parse_arguments(Expr& node) {
        NestingGuard guard(*this);
        expect_operator("(");
        bool first = true;
        while (!at_operator(")")) {
            if (!first) expect_operator(",");
            first = false;
            if (at_operator(")")) break;
            if (at_operator("*") || at_operator("**")) error("*args and **kwargs in calls are not supported in chat templates");
            if (current().type == TokenType::Name && peek().type == TokenType::Operator && peek().text == "=") {
                std::string name = next().text;
                next();
                node.keywords.emplace_back(std::move(name), parse_expression(true));
            } else {
                if (!node.keywords.empty()) error("positional argument after a keyword argument");
                node.operands.push_back(parse_expression(true));
            }
        }
        next();
    }

    ExprPtr parse_call(ExprPtr callee) {
        auto node = make(ExprKind::Call, current().line);
        node->operands.push_back(std::move(callee));
        parse_arguments(*node);
        return node;
    }

    std::string parse_dotted_name() {
        std::string name = expect_name();
        while (at_operator(".")) {
            next();
            name += "." + expect_name();
        }
        return name;
    }

    // `| f | g(args)`; in a filter block (`start_inline`) the first filter has no leading `|`.
    ExprPtr parse_filters(ExprPtr node, bool start_inline = false) {
        while (start_inline || at_operator("|")) {
            if (!start_inline) next();
            start_inline = false;
            auto filter = make(ExprKind::Filter, current().line);
            filter->name = parse_dotted_name();
            if (!is_known_filter(filter->name)) throw TemplateSyntaxError{fmt::format("no filter named '{}'", filter->name), filter->line};
            filter->operands.push_back(std::move(node));
            if (at_operator("(")) parse_arguments(*filter);
            node = std::move(filter);
        }
        return node;
    }

    ExprPtr parse_filters_and_tests(ExprPtr node) {
        while (true) {
            if (at_operator("|")) {
                node = parse_filters(std::move(node));
            } else if (at_name("is")) {
                node = parse_test(std::move(node));
            } else if (at_operator("(")) {
                node = parse_call(std::move(node));
            } else {
                return node;
            }
        }
    }

    ExprPtr parse_test(ExprPtr node) {
        const int line = next().line;
        const bool negated = skip_name("not");
        auto test = make(ExprKind::Test, line);
        test->name = parse_dotted_name();
        if (!is_known_test(test->name)) throw TemplateSyntaxError{fmt::format("no test named '{}'", test->name), test->line};
        test->operands.push_back(std::move(node));
        const auto type = current().type;
        if (at_operator("(")) {
            parse_arguments(*test);
        } else if ((type == TokenType::Name || type == TokenType::String || type == TokenType::Integer ||
                    type == TokenType::Float || at_operator("[") || at_operator("{")) &&
                   !at_name("else") && !at_name("or") && !at_name("and")) {
            if (at_name("is")) error("You cannot chain multiple tests with is");
            test->operands.push_back(parse_postfix(parse_primary()));
        }
        if (!negated) return test;
        auto negation = make(ExprKind::Not, line);
        negation->operands.push_back(std::move(test));
        return negation;
    }

    std::vector<Token> tokens_;
    size_t pos_ = 0;
    int nesting_ = 0;
    int loop_nesting_ = 0;
};

}  // namespace

std::unique_ptr<Template> parse(std::string_view source) { return Parser(tokenize(source)).run(); }

}  // namespace hearth::chat::jinja
