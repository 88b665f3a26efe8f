// hearth chat-template: render a model's chat template (its GGUF `tokenizer.chat_template`)
// over a messages file and print the prompt, exactly as Hugging Face transformers would.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "cli/cli.h"
#include "common/error.h"
#include "gguf/gguf.h"

namespace hearth::cli {
namespace {

struct ChatTemplateArgs {
    std::string model;
    std::string messages_file;
    std::string tools_file;
    std::string context_file;
    std::string template_file;
    bool no_generation_prompt = false;
};

nlohmann::ordered_json read_json_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("chat-template: cannot open {} file '{}'", what, path);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
        return nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::parse_error& error) {
        fail("chat-template: {} file '{}' is not valid JSON: {}", what, path, error.what());
    }
}

// The text of a special token named by its id key (e.g. tokenizer.ggml.bos_token_id).
std::string special_token_text(const gguf::File& file, std::string_view id_key) {
    const auto id = file.find_int(id_key);
    if (!id) return "";
    const auto& tokens = file.get_array("tokenizer.ggml.tokens");
    if (*id < 0 || static_cast<size_t>(*id) >= tokens.items.size()) fail("{}: {} = {} is not a token id", file.name(), id_key, *id);
    const std::string* text = tokens.items[static_cast<size_t>(*id)].as_string();
    return text ? *text : "";
}

void print_chat_template(const ChatTemplateArgs& args) {
    const gguf::File file = gguf::File::open(args.model);
    std::string source;
    if (!args.template_file.empty()) {
        std::ifstream in(args.template_file, std::ios::binary);
        if (!in) fail("chat-template: cannot open template file '{}'", args.template_file);
        source.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
        const auto found = file.find_string("tokenizer.chat_template");
        if (!found) fail("{}: the model has no tokenizer.chat_template (pass --template FILE)", file.name());
        source = *found;
    }

    // A messages file holds the array of messages, or an object with "messages" (and
    // optionally "tools" and template variables under "context").
    nlohmann::ordered_json messages = read_json_file(args.messages_file, "messages");
    nlohmann::ordered_json tools;
    chat::ChatTemplateOptions options;
    if (messages.is_object()) {
        if (!messages.contains("messages")) fail("chat-template: '{}' has no \"messages\" array", args.messages_file);
        if (messages.contains("tools")) tools = messages["tools"];
        if (messages.contains("context")) options.extra_context = messages["context"];
        messages = nlohmann::ordered_json(messages["messages"]);
    }
    if (!args.tools_file.empty()) tools = read_json_file(args.tools_file, "tools");
    if (!args.context_file.empty()) options.extra_context = read_json_file(args.context_file, "context");
    options.add_generation_prompt = !args.no_generation_prompt;
    options.bos_token = special_token_text(file, "tokenizer.ggml.bos_token_id");
    options.eos_token = special_token_text(file, "tokenizer.ggml.eos_token_id");

    const std::string prompt = chat::ChatTemplate(source).render(messages, tools, options);
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
}

}  // namespace

void add_chat_template(CLI::App& app) {
    auto args = std::make_shared<ChatTemplateArgs>();
    CLI::App* cmd = app.add_subcommand(
        "chat-template", "Render a model's chat template over a conversation and print the prompt, as Hugging Face "
                         "transformers renders it");
    cmd->add_option("-m,--model", args->model, "GGUF model whose tokenizer.chat_template is rendered")->required();
    cmd->add_option("--messages", args->messages_file,
                    "JSON file: an array of {\"role\", \"content\", ...} messages, or an object with \"messages\", "
                    "optional \"tools\" and \"context\" (template variables)")
        ->required();
    cmd->add_option("--tools", args->tools_file, "JSON file: an array of tools (OpenAI function format)");
    cmd->add_option("--context", args->context_file,
                    "JSON file: an object of extra template variables (builtin_tools, date_string, enable_thinking, ...)");
    cmd->add_option("--template", args->template_file, "Render this Jinja file instead of the model's template");
    cmd->add_flag("--no-generation-prompt", args->no_generation_prompt,
                  "Leave out the assistant header that asks the model to answer");
    cmd->footer("Example:\n  hearth chat-template -m llama-8b.gguf --messages chat.json --tools tools.json");
    cmd->callback([args] { print_chat_template(*args); });
}

}  // namespace hearth::cli
