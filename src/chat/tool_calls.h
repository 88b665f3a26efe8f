// Tool calls in Llama 3.1 model output. The model answers a call in one of three forms:
//   {"name": "get_weather", "parameters": {"city": "Paris"}}      (custom tools, JSON)
//   <|python_tag|>brave_search.call(query="weather in Paris")     (built-in tools)
//   <function=get_weather>{"city": "Paris"}</function>             (custom tools, tag form)
// and plain text otherwise. After <|python_tag|>, text that is not a `.call(...)` is code for
// the built-in code_interpreter.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::chat {

struct ToolCall {
    std::string name;
    nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
    bool builtin = false;  // a <|python_tag|> call of brave_search, wolfram_alpha or code_interpreter

    friend bool operator==(const ToolCall&, const ToolCall&) = default;
};

struct ParsedToolCalls {
    std::string content;  // text that is not part of a call (all of it when there is none)
    std::vector<ToolCall> tool_calls;
};

// Never throws: output that looks like a call but does not parse is returned as content.
ParsedToolCalls parse_llama31_tool_calls(std::string_view text);

}  // namespace hearth::chat
