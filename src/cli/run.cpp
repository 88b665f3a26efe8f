// hearth run: generate text with a model. With a prompt (or piped stdin) it answers once and
// exits; on a terminal it is a chat like `ollama run`: history kept, the model's chat template
// applied, /bye, /clear, /set, Ctrl-C stops the current answer.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <editline/readline.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/backend_option.h"
#include "cli/kv_type.h"
#include "common/error.h"
#include "common/strings.h"
#include "runtime/model_loader.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace hearth::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct RunArgs {
    std::string model;
    BackendArgs backend;
    std::string prompt;
    int64_t max_tokens = -1;
    int64_t context_length = 4096;
    int64_t batch_size = 512;
    int threads = 0;
    std::string kv_type = "f16";
    std::string system;
    SamplerParams sampling;
    int64_t seed = -1;
    bool raw = false;
    bool ids = false;
    bool verbose = false;
    bool interactive = false;
    bool no_memory_check = false;
};

// Set by SIGINT while an answer streams; the generation loop stops at the next token.
std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) { g_interrupted.store(true); }

enum class StopReason { EndToken, Limit, ContextFull, Interrupted };

struct GenerationStats {
    int64_t prompt_tokens = 0;
    double prompt_seconds = 0;
    int64_t generated_tokens = 0;
    double generate_seconds = 0;
    double first_token_seconds = 0;  // from the start of prompt processing to the first token
    StopReason stop = StopReason::EndToken;
    std::string text;
};

// Writes generated tokens as they come: text through a UTF-8-safe streaming decoder, or ids.
class TokenPrinter {
  public:
    TokenPrinter(const tokenizer::Tokenizer& tokenizer, bool ids) : decoder_(tokenizer), ids_(ids) {}

    // The text is kept in both modes: the chat history needs the answer as text.
    void print(int32_t token, std::string& text) {
        const std::string piece = decoder_.push(token);
        text += piece;
        if (ids_) {
            std::fputs(fmt::format("{}{}", first_ ? "" : " ", token).c_str(), stdout);
            first_ = false;
        } else {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
        }
        std::fflush(stdout);
    }
    void finish(std::string& text) {
        const std::string rest = decoder_.finish();
        text += rest;
        if (!ids_) std::fwrite(rest.data(), 1, rest.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
    }

  private:
    tokenizer::StreamingDecoder decoder_;
    bool ids_;
    bool first_ = true;
};

// The next token after `tokens`: from the largest logits only, found where the model runs, when
// the sampler's settings allow (a top-k filter or greedy, no penalty that can raise a logit), else
// from the whole row. The same token either way (Sampler::sample_top).
int32_t evaluate_and_sample(runtime::Session& session, Sampler& sampler, std::span<const int32_t> tokens) {
    const int32_t needed = sampler.top_logits_needed();
    if (needed > 0 && needed <= backend::Backend::kMaxTopK) {
        const runtime::Session::TopLogits top = session.evaluate_top(tokens, needed);
        return sampler.sample_top(top.tokens, top.logits);
    }
    return sampler.sample(session.evaluate(tokens));
}

GenerationStats generate(const runtime::LoadedModel& model, runtime::Session& session, Sampler& sampler,
                         std::span<const int32_t> prompt, int64_t max_tokens, bool print_ids) {
    GenerationStats stats;
    stats.prompt_tokens = static_cast<int64_t>(prompt.size());
    const auto start = Clock::now();
    int32_t token = evaluate_and_sample(session, sampler, prompt);
    stats.prompt_seconds = std::chrono::duration<double>(Clock::now() - start).count();

    TokenPrinter printer(model.tokenizer(), print_ids);
    const auto generate_start = Clock::now();
    for (;;) {
        if (g_interrupted.exchange(false)) {
            stats.stop = StopReason::Interrupted;
            break;
        }
        if (max_tokens >= 0 && stats.generated_tokens >= max_tokens) {
            stats.stop = StopReason::Limit;
            break;
        }
        sampler.accept(token);
        if (stats.generated_tokens == 0)
            stats.first_token_seconds = std::chrono::duration<double>(Clock::now() - start).count();
        if (model.ends_generation(token)) {
            stats.stop = StopReason::EndToken;
            break;
        }
        ++stats.generated_tokens;
        printer.print(token, stats.text);
        if (session.remaining() < 1) {
            stats.stop = StopReason::ContextFull;
            break;
        }
        const int32_t next[] = {token};
        token = evaluate_and_sample(session, sampler, next);
    }
    stats.generate_seconds = std::chrono::duration<double>(Clock::now() - generate_start).count();
    printer.finish(stats.text);
    if (stats.stop == StopReason::ContextFull)
        std::fprintf(stderr, "(stopped: the context of %lld tokens is full; raise it with -c)\n",
                     static_cast<long long>(session.context_length()));
    return stats;
}

void print_verbose(const runtime::LoadedModel& model, const GenerationStats& s, double total_seconds) {
    auto rate = [](int64_t n, double seconds) { return seconds > 0 ? n / seconds : 0.0; };
    std::fprintf(stderr,
                 "total duration:       %.3fs\n"
                 "load duration:        %.3fs\n"
                 "prompt eval count:    %lld token(s)\n"
                 "prompt eval duration: %.3fs\n"
                 "prompt eval rate:     %.2f tokens/s\n"
                 "time to first token:  %.3fs\n"
                 "eval count:           %lld token(s)\n"
                 "eval duration:        %.3fs\n"
                 "eval rate:            %.2f tokens/s\n",
                 total_seconds, model.load_seconds(), static_cast<long long>(s.prompt_tokens), s.prompt_seconds,
                 rate(s.prompt_tokens, s.prompt_seconds), s.first_token_seconds,
                 static_cast<long long>(s.generated_tokens), s.generate_seconds,
                 rate(s.generated_tokens, s.generate_seconds));
}

std::unique_ptr<runtime::LoadedModel> load_model(const RunArgs& args) {
    runtime::LoadOptions options;
    options.threads = args.threads;
    options.context_length = args.context_length;
    options.batch_size = args.batch_size;
    options.check_memory = !args.no_memory_check;
    options.kv_type = parse_kv_type(args.kv_type, "run");
    set_backend_options(options, args.backend, "run");
    auto model = runtime::LoadedModel::load(args.model, options);
    if (args.verbose) {
        const std::string& why = model->backend_fallback_reason();
        std::fprintf(stderr, "backend: %s%s\n", runtime::describe_placement(model->llama()).c_str(),
                     why.empty() ? "" : (" (" + why + ")").c_str());
    }
    return model;
}

SamplerParams sampler_params(const RunArgs& args) {
    SamplerParams params = args.sampling;
    if (args.seed >= 0) params.seed = static_cast<uint64_t>(args.seed);
    validate_sampler_params(params);
    return params;
}

// The prompt's tokens: the text as it is with --raw (BOS as the model's metadata says), or the
// conversation rendered by the chat template (which writes BOS itself).
std::vector<int32_t> tokenize_prompt(const runtime::LoadedModel& model, const std::string& text, bool raw) {
    tokenizer::EncodeOptions options;
    options.parse_special = true;
    options.add_bos = raw;
    return model.tokenizer().encode(text, options);
}

nlohmann::ordered_json message(const std::string& role, const std::string& content) {
    return {{"role", role}, {"content", content}};
}

std::string read_all_stdin() {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

void run_once(const RunArgs& args, std::string prompt) {
    const auto start = Clock::now();
    auto model = load_model(args);
    runtime::Session session(*model);
    Sampler sampler(sampler_params(args), static_cast<int32_t>(model->hparams().vocab_size));
    std::string text = prompt;
    if (!args.raw) {
        nlohmann::ordered_json messages = nlohmann::ordered_json::array();
        if (!args.system.empty()) messages.push_back(message("system", args.system));
        messages.push_back(message("user", prompt));
        text = model->render_chat(messages);
    }
    const std::vector<int32_t> tokens = tokenize_prompt(*model, text, args.raw);
    const GenerationStats stats = generate(*model, session, sampler, tokens, args.max_tokens, args.ids);
    if (args.verbose) print_verbose(*model, stats, std::chrono::duration<double>(Clock::now() - start).count());
}

// The interactive chat. Each turn renders the whole conversation with the template and
// evaluates only the tokens past what the KV cache already holds.
class Chat {
  public:
    Chat(const RunArgs& args, std::unique_ptr<runtime::LoadedModel> model)
        : args_(args), model_(std::move(model)), session_(*model_), params_(sampler_params(args)) {
        if (!args.system.empty()) system_ = args.system;
    }

    void loop() {
        std::printf("Chatting with %s. Type /? for help, /bye or Ctrl-D to leave.\n", args_.model.c_str());
        while (auto line = read_input()) {
            if (line->empty()) continue;
            if ((*line)[0] == '/') {
                if (!command(*line)) return;
                continue;
            }
            answer(*line);
        }
    }

  private:
    std::optional<std::string> read_line(const char* prompt) {
        if (!terminal_) {
            std::string line;
            if (!std::getline(std::cin, line)) return std::nullopt;
            return line;
        }
        char* raw = readline(prompt);
        if (!raw) return std::nullopt;
        std::string line(raw);
        std::free(raw);
        if (!line.empty()) add_history(line.c_str());
        return line;
    }

    // One message; `"""` opens and closes a message of several lines, as in ollama.
    std::optional<std::string> read_input() {
        auto line = read_line(">>> ");
        if (!line || line->rfind("\"\"\"", 0) != 0) return line;
        std::string text = line->substr(3);
        while (text.size() < 3 || text.compare(text.size() - 3, 3, "\"\"\"") != 0) {
            auto more = read_line("... ");
            if (!more) break;
            text += (text.empty() ? "" : "\n") + *more;
        }
        if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\"\"\"") == 0) text.resize(text.size() - 3);
        return text;
    }

    void answer(const std::string& user_text) {
        nlohmann::ordered_json messages = history_;
        messages.push_back(message("user", user_text));
        nlohmann::ordered_json rendered = nlohmann::ordered_json::array();
        if (system_) rendered.push_back(message("system", *system_));
        for (const auto& m : messages) rendered.push_back(m);
        const std::vector<int32_t> tokens = tokenize_prompt(*model_, model_->render_chat(rendered), false);

        // Keep the cached prefix the new prompt shares with what the cache holds.
        const std::vector<int32_t>& cached = session_.tokens();
        size_t shared = 0;
        while (shared < cached.size() && shared + 1 < tokens.size() && cached[shared] == tokens[shared]) ++shared;
        session_.truncate(static_cast<int64_t>(shared));
        const std::span<const int32_t> fresh(tokens.data() + shared, tokens.size() - shared);

        Sampler sampler(params_, static_cast<int32_t>(model_->hparams().vocab_size));
        const auto start = Clock::now();
        g_interrupted.store(false);
        try {
            const GenerationStats stats = generate(*model_, session_, sampler, fresh, max_tokens_, args_.ids);
            if (stats.stop == StopReason::Interrupted) std::printf("(stopped)\n");
            messages.push_back(message("assistant", stats.text));
            history_ = std::move(messages);
            if (verbose_) print_verbose(*model_, stats, std::chrono::duration<double>(Clock::now() - start).count());
        } catch (const Error& e) {
            std::fprintf(stderr, "error: %s\n", e.what());
        }
        std::printf("\n");
    }

    // Returns false to leave.
    bool command(const std::string& line) {
        std::istringstream words(line);
        std::string verb, what;
        words >> verb >> what;
        if (verb == "/bye" || verb == "/exit") return false;
        if (verb == "/clear") {
            history_ = nlohmann::ordered_json::array();
            session_.clear();
            std::printf("Cleared session context\n");
        } else if (verb == "/set" && what == "parameter") {
            std::string name, value;
            words >> name >> value;
            set_parameter(name, value);
        } else if (verb == "/set" && what == "system") {
            std::string rest;
            std::getline(words, rest);
            const size_t start = rest.find_first_not_of(" \t");
            system_ = start == std::string::npos ? std::nullopt : std::optional<std::string>(rest.substr(start));
            std::printf("Set system message.\n");
        } else if (verb == "/set" && (what == "verbose" || what == "quiet")) {
            verbose_ = what == "verbose";
            std::printf("Set '%s' mode.\n", what.c_str());
        } else if (verb == "/show" && what == "info") {
            const auto& h = model_->hparams();
            std::printf("  architecture  %s\n  parameters    %lld layers, dim %lld, %lld/%lld heads\n"
                        "  context       %lld of %lld\n  memory        %s\n",
                        h.architecture.c_str(), (long long)h.layer_count, (long long)h.embedding_length,
                        (long long)h.head_count, (long long)h.head_count_kv, (long long)session_.context_length(),
                        (long long)h.context_length, format_bytes(model_->memory().total()).c_str());
        } else {
            print_help();
        }
        return true;
    }

    void set_parameter(const std::string& name, const std::string& value) {
        try {
            SamplerParams next = params_;
            if (name == "temperature") next.temperature = std::stof(value);
            else if (name == "top_k") next.top_k = std::stoi(value);
            else if (name == "top_p") next.top_p = std::stof(value);
            else if (name == "min_p") next.min_p = std::stof(value);
            else if (name == "repeat_penalty") next.repeat_penalty = std::stof(value);
            else if (name == "repeat_last_n") next.repeat_last_n = std::stoi(value);
            else if (name == "presence_penalty") next.presence_penalty = std::stof(value);
            else if (name == "frequency_penalty") next.frequency_penalty = std::stof(value);
            else if (name == "seed") next.seed = std::stoull(value);
            else if (name == "num_predict") max_tokens_ = std::stoll(value);
            else {
                std::printf("Unknown parameter '%s'. Parameters: temperature, top_k, top_p, min_p, repeat_penalty, "
                            "repeat_last_n, presence_penalty, frequency_penalty, seed, num_predict\n",
                            name.c_str());
                return;
            }
            validate_sampler_params(next);
            params_ = next;
            std::printf("Set parameter '%s' to '%s'\n", name.c_str(), value.c_str());
        } catch (const std::logic_error&) {
            std::printf("'%s' is not a valid value for %s\n", value.c_str(), name.c_str());
        } catch (const Error& e) {
            std::printf("%s\n", e.what());
        }
    }

    static void print_help() {
        std::printf(
            "Available commands:\n"
            "  /set parameter NAME VALUE   temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,\n"
            "                              presence_penalty, frequency_penalty, seed, num_predict\n"
            "  /set system MESSAGE         set the system message\n"
            "  /set verbose | quiet        show or hide timings after each answer\n"
            "  /show info                  the model's facts\n"
            "  /clear                      forget the conversation\n"
            "  /bye                        leave (or Ctrl-D)\n"
            "  /?                          this help\n"
            "Use \"\"\" to begin and end a message of several lines. Ctrl-C stops an answer.\n");
    }

    const RunArgs& args_;
    std::unique_ptr<runtime::LoadedModel> model_;
    runtime::Session session_;
    SamplerParams params_;
    std::optional<std::string> system_;
    nlohmann::ordered_json history_ = nlohmann::ordered_json::array();
    int64_t max_tokens_ = args_.max_tokens;
    bool verbose_ = args_.verbose;
    bool terminal_ = isatty(STDIN_FILENO);
};

void install_interrupt_handler() {
    struct sigaction action = {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
}

void run(RunArgs& args) {
    const bool terminal = isatty(STDIN_FILENO);
    if (!args.prompt.empty() || (!terminal && !args.interactive)) {
        std::string prompt = args.prompt;
        if (!terminal) {
            const std::string piped = read_all_stdin();
            prompt = prompt.empty() ? piped : piped.empty() ? prompt : prompt + "\n\n" + piped;
        }
        if (prompt.empty()) fail("run: the prompt is empty (give one as an argument or on stdin)");
        run_once(args, prompt);
        return;
    }
    install_interrupt_handler();
    Chat(args, load_model(args)).loop();
}

}  // namespace

void add_run(CLI::App& app) {
    auto args = std::make_shared<RunArgs>();
    CLI::App* cmd = app.add_subcommand(
        "run", "Generate text: answer one prompt (argument or piped stdin), or chat on a terminal");
    cmd->add_option("-m,--model", args->model, "GGUF model file")->required();
    cmd->add_option("prompt", args->prompt, "The prompt; without one (and on a terminal) an interactive chat starts");
    cmd->add_option("-n,--num-predict", args->max_tokens, "Most tokens to generate (-1: until the model stops)")
        ->capture_default_str();
    cmd->add_option("-c,--ctx-size", args->context_length, "Context length in tokens (0: the model's own)")
        ->capture_default_str();
    cmd->add_option("--temp,--temperature", args->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
    cmd->add_option("--top-k", args->sampling.top_k, "Keep the k most likely tokens (0: all)")->capture_default_str();
    cmd->add_option("--top-p", args->sampling.top_p, "Nucleus sampling threshold (1: off)")->capture_default_str();
    cmd->add_option("--min-p", args->sampling.min_p, "Drop tokens below min-p times the best one's probability")
        ->capture_default_str();
    cmd->add_option("--repeat-penalty", args->sampling.repeat_penalty, "Penalty for repeated tokens (1: off)")
        ->capture_default_str();
    cmd->add_option("--repeat-last-n", args->sampling.repeat_last_n, "How many recent tokens the penalties look at")
        ->capture_default_str();
    cmd->add_option("--presence-penalty", args->sampling.presence_penalty, "Subtracted once per seen token");
    cmd->add_option("--frequency-penalty", args->sampling.frequency_penalty, "Subtracted per occurrence");
    cmd->add_option("--seed", args->seed, "Random seed (-1: a fresh one each run)")->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "Threads (0: one per core)")->capture_default_str();
    cmd->add_option("-b,--batch-size", args->batch_size, "Prompt tokens per forward pass")->capture_default_str();
    cmd->add_option("--kv-type", args->kv_type, "KV cache type: f16 or q8_0 (half the memory)")->capture_default_str();
    add_backend_options(cmd, args->backend);
    cmd->add_option("--system", args->system, "System message for the chat template");
    cmd->add_flag("--raw", args->raw, "Send the prompt as it is, without the chat template");
    cmd->add_flag("--ids", args->ids, "Print generated token ids instead of text");
    cmd->add_flag("--verbose", args->verbose, "Print load time, prompt and decode speed, time to first token");
    cmd->add_flag("--interactive", args->interactive, "Chat even when stdin is not a terminal (one message a line)");
    cmd->add_flag("--no-memory-check", args->no_memory_check, "Load even when the memory estimate exceeds free RAM");
    cmd->footer(
        "Examples:\n"
        "  hearth run -m model.gguf \"Why is the sky blue?\"        answer once\n"
        "  echo \"Summarize: ...\" | hearth run -m model.gguf       prompt from stdin\n"
        "  hearth run -m model.gguf                               chat (/? for commands)\n"
        "  hearth run -m model.gguf --raw --ids --temp 0 -n 16 \"Hello\"   greedy token ids, no template\n"
        "When stdin is not a terminal it is read to its end and added to the prompt (as ollama does);\n"
        "redirect it from /dev/null in scripts that pass the prompt as an argument.");
    cmd->callback([args] { run(*args); });
}

}  // namespace hearth::cli
