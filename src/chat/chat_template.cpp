#include "chat/chat_template.h"

#include <fmt/format.h>

#include "chat/ast.h"
#include "chat/lexer.h"
#include "chat/renderer.h"

namespace hearth::chat {
namespace {

std::unique_ptr<jinja::Template> parse_or_throw(std::string_view source) {
    try {
        return jinja::parse(source);
    } catch (const jinja::TemplateSyntaxError& error) {
        throw TemplateError(error.line, error.message, false);
    }
}

std::string render_parsed(const jinja::Template& tmpl, const nlohmann::ordered_json& variables,
                          const ChatTemplateOptions& options) {
    jinja::RenderSettings settings;
    settings.max_output_bytes = options.limits.max_output_bytes;
    settings.max_depth = options.limits.max_depth;
    settings.max_loop_iterations = options.limits.max_loop_iterations;
    settings.max_objects = options.limits.max_objects;
    settings.now = options.now;
    jinja::Renderer renderer(settings);
    try {
        return renderer.render(tmpl, variables);
    } catch (const jinja::TemplateRuntimeError& error) {
        throw TemplateError(renderer.failing_line(), error.message, error.raised_by_template);
    }
}

// The variables Hugging Face passes: messages, tools (None without tools), documents,
// add_generation_prompt, the special tokens, then the caller's extra ones.
nlohmann::ordered_json chat_variables(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                      const ChatTemplateOptions& options) {
    validate_messages(messages);
    validate_tools(tools);
    if (!options.extra_context.is_object()) fail("chat template: the extra context must be a JSON object");
    nlohmann::ordered_json variables = nlohmann::ordered_json::object();
    variables["messages"] = messages;
    variables["tools"] = tools;
    variables["documents"] = nullptr;
    variables["add_generation_prompt"] = options.add_generation_prompt;
    variables["bos_token"] = options.bos_token;
    variables["eos_token"] = options.eos_token;
    for (const auto& [key, value] : options.extra_context.items()) variables[key] = value;
    return variables;
}

}  // namespace

TemplateError::TemplateError(int line, std::string detail, bool raised_by_template)
    : Error(raised_by_template ? fmt::format("chat template line {}: raise_exception: {}", line, detail)
                               : fmt::format("chat template line {}: {}", line, detail)),
      line_(line),
      detail_(std::move(detail)),
      raised_by_template_(raised_by_template) {}

ChatTemplate::ChatTemplate(std::string_view source) : template_(parse_or_throw(source)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                 const ChatTemplateOptions& options) const {
    return render_parsed(*template_, chat_variables(messages, tools, options), options);
}

std::string render_chat_template(std::string_view source, const nlohmann::ordered_json& messages,
                                 const nlohmann::ordered_json& tools, const ChatTemplateOptions& options) {
    return ChatTemplate(source).render(messages, tools, options);
}

std::string render_jinja(std::string_view source, const nlohmann::ordered_json& variables,
                         const ChatTemplateOptions& options) {
    const auto tmpl = parse_or_throw(source);
    return render_parsed(*tmpl, variables, options);
}

void validate_messages(const nlohmann::ordered_json& messages) {
    if (!messages.is_array()) fail("messages: expected a JSON array of messages, got {}", messages.type_name());
    for (size_t i = 0; i < messages.size(); ++i) {
        const auto& message = messages[i];
        if (!message.is_object()) fail("messages[{}]: expected an object with \"role\" and \"content\", got {}", i, message.type_name());
        const auto role = message.find("role");
        if (role == message.end()) fail("messages[{}]: missing \"role\"", i);
        if (!role->is_string()) fail("messages[{}]: \"role\" must be a string, got {}", i, role->type_name());
        const auto content = message.find("content");
        if (content != message.end() && !content->is_string() && !content->is_null() && !content->is_array() && !content->is_object())
            fail("messages[{}]: \"content\" must be a string, an array of parts, an object or null, got {}", i, content->type_name());
        const auto tool_calls = message.find("tool_calls");
        if (tool_calls != message.end() && !tool_calls->is_array() && !tool_calls->is_null())
            fail("messages[{}]: \"tool_calls\" must be an array, got {}", i, tool_calls->type_name());
    }
}

void validate_tools(const nlohmann::ordered_json& tools) {
    if (tools.is_null()) return;
    if (!tools.is_array()) fail("tools: expected a JSON array of tools, got {}", tools.type_name());
    for (size_t i = 0; i < tools.size(); ++i) {
        if (!tools[i].is_object()) fail("tools[{}]: expected an object, got {}", i, tools[i].type_name());
    }
}

}  // namespace hearth::chat
