// Issue 3, item 9: Llama 3.1 output parsed into tool calls, or left as text.
#include <gtest/gtest.h>

#include "chat/tool_calls.h"

namespace hearth::chat {
namespace {

using nlohmann::ordered_json;

TEST(ToolCalls, JsonFormWithParameters) {
    const auto parsed = parse_llama31_tool_calls(R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 3}}<|eot_id|>)");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
    EXPECT_EQ(parsed.tool_calls[0].name, "get_weather");
    EXPECT_EQ(parsed.tool_calls[0].arguments, ordered_json::parse(R"({"city": "Paris", "days": 3})"));
    EXPECT_FALSE(parsed.tool_calls[0].builtin);
    EXPECT_EQ(parsed.content, "");
}

TEST(ToolCalls, JsonFormAcceptsArgumentsKeyAndEncodedArguments) {
    auto parsed = parse_llama31_tool_calls(R"(  {"name": "f", "arguments": {"x": 1}}  )");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
    EXPECT_EQ(parsed.tool_calls[0].arguments, ordered_json::parse(R"({"x": 1})"));
    parsed = parse_llama31_tool_calls(R"({"name": "f", "parameters": "{\"x\": 2}"})");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
    EXPECT_EQ(parsed.tool_calls[0].arguments, ordered_json::parse(R"({"x": 2})"));
}

TEST(ToolCalls, SeveralJsonCallsSeparatedBySemicolons) {
    const auto parsed = parse_llama31_tool_calls(R"({"name": "a", "parameters": {}}; {"name": "b", "parameters": {"y": true}})");
    ASSERT_EQ(parsed.tool_calls.size(), 2u);
    EXPECT_EQ(parsed.tool_calls[0].name, "a");
    EXPECT_EQ(parsed.tool_calls[1].name, "b");
}

TEST(ToolCalls, BuiltinPythonTagCall) {
    const auto parsed = parse_llama31_tool_calls("<|python_tag|>brave_search.call(query=\"weather in \\\"Menlo Park\\\"\")<|eom_id|>");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
    EXPECT_EQ(parsed.tool_calls[0].name, "brave_search");
    EXPECT_TRUE(parsed.tool_calls[0].builtin);
    EXPECT_EQ(parsed.tool_calls[0].arguments, ordered_json::parse(R"({"query": "weather in \"Menlo Park\""})"));
}

TEST(ToolCalls, BuiltinCallWithSeveralLiteralArguments) {
    const auto parsed = parse_llama31_tool_calls("<|python_tag|>wolfram_alpha.call(query='2^10', limit=3, exact=True, unit=None)");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
    EXPECT_EQ(parsed.tool_calls[0].arguments, ordered_json::parse(R"({"query": "2^10", "limit": 3, "exact": true, "unit": null})"));
}

TEST(ToolCalls, PythonTagWithCodeIsCodeInterpreter) {
    const auto parsed = parse_llama31_tool_calls("<|python_tag|>import math\nprint(math.sqrt(2))<|eom_id|>");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
    EXPECT_EQ(parsed.tool_calls[0].name, "code_interpreter");
    EXPECT_TRUE(parsed.tool_calls[0].builtin);
    EXPECT_EQ(parsed.tool_calls[0].arguments["code"], "import math\nprint(math.sqrt(2))");
}

TEST(ToolCalls, PythonTagWithJsonIsACustomCall) {
    const auto parsed = parse_llama31_tool_calls(R"(<|python_tag|>{"name": "get_time", "parameters": {"tz": "UTC"}})");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
    EXPECT_EQ(parsed.tool_calls[0].name, "get_time");
    EXPECT_FALSE(parsed.tool_calls[0].builtin);
}

TEST(ToolCalls, FunctionTagFormWithSurroundingText) {
    const auto parsed = parse_llama31_tool_calls(R"(Let me check. <function=get_weather>{"city": "Oslo"}</function>)");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
    EXPECT_EQ(parsed.tool_calls[0].name, "get_weather");
    EXPECT_EQ(parsed.tool_calls[0].arguments, ordered_json::parse(R"({"city": "Oslo"})"));
    EXPECT_EQ(parsed.content, "Let me check.");
}

TEST(ToolCalls, PlainTextIsContent) {
    for (const char* text : {"The weather is nice.", "{not json", R"({"no_name": 1})", "<function=f>{broken</function>",
                             R"({"name": 5, "parameters": {}})", "brave_search.call(query=\"x\")", ""}) {
        const auto parsed = parse_llama31_tool_calls(text);
        EXPECT_TRUE(parsed.tool_calls.empty()) << text;
        EXPECT_EQ(parsed.content, text);
    }
}

}  // namespace
}  // namespace hearth::chat
