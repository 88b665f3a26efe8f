// Feeds arbitrary templates (and optionally a JSON context) to the chat template engine: it
// must render or throw hearth::Error — never crash, hang, overflow the stack or leak. Input:
// the template, optionally followed by a NUL byte and a JSON object of variables; without
// one, a small conversation with tools is the context. Small limits keep each run fast.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "common/error.h"

namespace {

const nlohmann::ordered_json& default_variables() {
    static const nlohmann::ordered_json variables = nlohmann::ordered_json::parse(R"({
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 👋"},
                     {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
                      "function": {"name": "f", "arguments": {"x": 1.5, "y": [true, null]}}}]},
                     {"role": "tool", "content": "{\"ok\": 1}"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"
    })");
    return variables;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const size_t split = input.find('\0');
    const std::string_view source = input.substr(0, split);
    nlohmann::ordered_json variables = default_variables();
    if (split != std::string_view::npos) {
        auto parsed = nlohmann::ordered_json::parse(input.substr(split + 1), nullptr, false);
        if (!parsed.is_discarded() && parsed.is_object()) variables = std::move(parsed);
    }
    hearth::chat::ChatTemplateOptions options;
    options.limits.max_output_bytes = 1 << 16;
    options.limits.max_loop_iterations = 10'000;
    options.limits.max_objects = 100'000;
    options.now = std::tm{};
    try {
        volatile size_t sink = hearth::chat::render_jinja(source, variables, options).size();
        (void)sink;
    } catch (const hearth::Error&) {
    }
    return 0;
}
