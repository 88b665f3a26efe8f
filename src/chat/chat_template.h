// Rendering a model's chat template (the GGUF's `tokenizer.chat_template`, Jinja) into a
// prompt, byte for byte as Hugging Face transformers renders it: jinja2's
// ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and loop controls, `tojson`
// without ASCII escaping, and the globals `raise_exception` and `strftime_now`.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace hearth::chat {

namespace jinja {
struct Template;
}

// Bounds that make every render end: a template that passes one fails with TemplateError.
struct RenderLimits {
    size_t max_output_bytes = 16u << 20;      // the prompt, and any one string built on the way
    int max_depth = 200;                      // nested statements / expressions / macro calls
    int64_t max_loop_iterations = 1'000'000;  // all loops of one render together
    size_t max_objects = 1'000'000;           // lists, dicts, functions and scopes made
};

struct ChatTemplateOptions {
    bool add_generation_prompt = true;
    std::string bos_token;
    std::string eos_token;
    // More template variables, e.g. builtin_tools, tools_in_user_message, date_string,
    // enable_thinking. A JSON object; its keys win over the ones above.
    nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();
    // The clock strftime_now() reads; nullopt: the local time now. Tests pin it.
    std::optional<std::tm> now;
    RenderLimits limits;
};

// A template that failed to parse or render. The message names the line and the problem
// ("chat template line 12: unknown tag 'extends'"); raise_exception() in the template gives
// raised_by_template() with its message as detail().
class TemplateError : public Error {
  public:
    TemplateError(int line, std::string detail, bool raised_by_template);
    int line() const { return line_; }
    const std::string& detail() const { return detail_; }
    bool raised_by_template() const { return raised_by_template_; }

  private:
    int line_;
    std::string detail_;
    bool raised_by_template_;
};

// A parsed template, reusable across renders (parse once per model).
class ChatTemplate {
  public:
    // Throws TemplateError for a syntax error or a construct the engine does not support.
    explicit ChatTemplate(std::string_view source);
    ChatTemplate(ChatTemplate&&) noexcept;
    ChatTemplate& operator=(ChatTemplate&&) noexcept;
    ~ChatTemplate();

    // `messages`: an array of objects with a string "role" (content and other fields are
    // passed through). `tools`: null or an array of tool objects. Throws hearth::Error for
    // malformed messages or tools and TemplateError when rendering fails.
    std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                       const ChatTemplateOptions& options) const;

  private:
    std::unique_ptr<jinja::Template> template_;
};

// Parses and renders in one call.
std::string render_chat_template(std::string_view source, const nlohmann::ordered_json& messages,
                                 const nlohmann::ordered_json& tools, const ChatTemplateOptions& options);

// Renders any template with the given variables (a JSON object); the engine underneath.
std::string render_jinja(std::string_view source, const nlohmann::ordered_json& variables,
                         const ChatTemplateOptions& options);

// Throws hearth::Error naming the first defect: not an array, an entry that is not an
// object, a missing or non-string role.
void validate_messages(const nlohmann::ordered_json& messages);
void validate_tools(const nlohmann::ordered_json& tools);

}  // namespace hearth::chat
