// Bad input ends in a clear hearth::Error, never a crash or a hang: unsupported constructs
// name themselves and their line, malformed messages name the message, and the render bounds
// (depth, loop iterations, output size) stop runaway templates.
#include <gtest/gtest.h>

#include "chat/chat_template.h"

namespace hearth::chat {
namespace {

using nlohmann::ordered_json;

std::string render(std::string_view source, const ChatTemplateOptions& options = {}) {
    return render_jinja(source, ordered_json::object(), options);
}

// The error's message, or "" when the template renders.
std::string error_of(std::string_view source, const ChatTemplateOptions& options = {}) {
    try {
        render(source, options);
    } catch (const Error& error) {
        return error.what();
    }
    return "";
}

TEST(ChatTemplateErrors, UnsupportedConstructsNameThemselvesAndTheirLine) {
    EXPECT_EQ(error_of("line one\n{% extends 'base.html' %}"),
              "chat template line 2: the 'extends' tag is not supported in chat templates");
    EXPECT_EQ(error_of("\n\n{% include 'x' %}"), "chat template line 3: the 'include' tag is not supported in chat templates");
    EXPECT_EQ(error_of("{% do x.append(1) %}"), "chat template line 1: the 'do' tag is not supported in chat templates");
    EXPECT_EQ(error_of("a\n{{ x | frobnicate }}"), "chat template line 2: no filter named 'frobnicate'");
    EXPECT_EQ(error_of("{% if x is prime %}{% endif %}"), "chat template line 1: no test named 'prime'");
    EXPECT_EQ(error_of("{% for x in y recursive %}{% endfor %}"),
              "chat template line 1: recursive for loops are not supported in chat templates");
    EXPECT_EQ(error_of("{% bogus %}"), "chat template line 1: unknown tag 'bogus'");
    EXPECT_EQ(error_of("{{ '%s' % 1 }}"), "chat template line 1: printf-style string formatting with % is not supported in chat templates");
}

TEST(ChatTemplateErrors, SyntaxErrorsNameTheLine) {
    EXPECT_EQ(error_of("{% if true %}\nno end"), "chat template line 2: unexpected end of template, expected 'endif'");
    EXPECT_EQ(error_of("{{ 'unterminated }}"), "chat template line 1: unexpected char '''");
    EXPECT_EQ(error_of("\n{{ (1 }}"), "chat template line 2: unexpected '}', expected ')'");
    EXPECT_EQ(error_of("{# never closed"), "chat template line 1: Missing end of comment tag");
    EXPECT_NE(error_of("{{ }}"), "");
    EXPECT_NE(error_of("{% break %}"), "");
}

TEST(ChatTemplateErrors, RuntimeErrorsNameTheLine) {
    EXPECT_EQ(error_of("ok\n\n{{ missing.attribute }}"), "chat template line 3: 'missing' is undefined");
    EXPECT_EQ(error_of("{{ 1 + 'a' }}"), "chat template line 1: unsupported operand type(s) for +: 'int' and 'str'");
    EXPECT_EQ(error_of("{{ [1].append(2) }}"), "chat template line 1: access to attribute 'append' of 'list' object is unsafe.");
    EXPECT_EQ(error_of("{{ 1 // 0 }}"), "chat template line 1: integer division or modulo by zero");
    EXPECT_EQ(error_of("{{ 9223372036854775807 + 1 }}"), "chat template line 1: integer overflow (values beyond 64 bits are not supported)");
}

TEST(ChatTemplateErrors, RaiseExceptionCarriesTheTemplatesMessage) {
    try {
        render("{% if true %}\n{{ raise_exception('roles must alternate') }}{% endif %}");
        FAIL() << "expected a TemplateError";
    } catch (const TemplateError& error) {
        EXPECT_TRUE(error.raised_by_template());
        EXPECT_EQ(error.line(), 2);
        EXPECT_EQ(error.detail(), "roles must alternate");
        EXPECT_STREQ(error.what(), "chat template line 2: raise_exception: roles must alternate");
    }
}

TEST(ChatTemplateErrors, MalformedMessagesAreNamed) {
    auto message_error = [](const char* messages_json, const char* tools_json = "null") -> std::string {
        try {
            render_chat_template("{{ messages }}", ordered_json::parse(messages_json), ordered_json::parse(tools_json), {});
        } catch (const Error& error) {
            return error.what();
        }
        return "";
    };
    EXPECT_EQ(message_error(R"({"role": "user"})"), "messages: expected a JSON array of messages, got object");
    EXPECT_EQ(message_error(R"(["hello"])"), "messages[0]: expected an object with \"role\" and \"content\", got string");
    EXPECT_EQ(message_error(R"([{"role": "user", "content": "a"}, {"content": "b"}])"), "messages[1]: missing \"role\"");
    EXPECT_EQ(message_error(R"([{"role": 3}])"), "messages[0]: \"role\" must be a string, got number");
    EXPECT_EQ(message_error(R"([{"role": "user", "content": 5}])"),
              "messages[0]: \"content\" must be a string, an array of parts, an object or null, got number");
    EXPECT_EQ(message_error(R"([{"role": "user", "content": "x"}])", R"({"name": "f"})"), "tools: expected a JSON array of tools, got object");
    EXPECT_EQ(message_error(R"([{"role": "user", "content": "x"}])", R"([1])"), "tools[0]: expected an object, got number");
    EXPECT_EQ(message_error(R"([{"role": "user", "content": "x"}])"), "");
}

TEST(ChatTemplateErrors, RecursionIsBounded) {
    EXPECT_EQ(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
              "chat template line 1: the template nests or recurses deeper than 200 levels");
    std::string deep(5000, '(');
    EXPECT_NE(error_of("{{ " + deep + "1" + std::string(5000, ')') + " }}").find("nested deeper than"), std::string::npos);
    std::string nested_ifs;
    for (int i = 0; i < 500; ++i) nested_ifs += "{% if true %}";
    EXPECT_NE(error_of(nested_ifs).find("nested deeper than"), std::string::npos);
}

TEST(ChatTemplateErrors, LoopsAndOutputAreBounded) {
    ChatTemplateOptions options;
    options.limits.max_loop_iterations = 10'000;
    options.limits.max_output_bytes = 1 << 16;
    EXPECT_EQ(error_of("{% for i in range(100000) %}{% endfor %}", options),
              "chat template line 1: the template builds a list longer than 10000 items");
    EXPECT_EQ(error_of("{% for i in range(200) %}{% for j in range(200) %}{% endfor %}{% endfor %}", options),
              "chat template line 1: the template runs more than 10000 loop iterations");
    EXPECT_EQ(error_of("{{ 'x' * 100000 }}", options), "chat template line 1: the template builds a string longer than 65536 bytes");
    EXPECT_EQ(error_of("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", options),
              "chat template line 1: the template builds a string longer than 65536 bytes");
    EXPECT_EQ(error_of("{% for i in range(5000) %}0123456789abcdef{% endfor %}", options),
              "chat template line 1: the template builds a string longer than 65536 bytes");
}

TEST(ChatTemplateErrors, SelfReferencingNamespaceIsAnErrorNotACrash) {
    EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}").find("nested deeper than"), std::string::npos);
    EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}"), "");
}

}  // namespace
}  // namespace hearth::chat
