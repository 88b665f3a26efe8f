#include "cli/cli.h"

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/version.h"

namespace hearth::cli {
namespace {

// llama.cpp's multi-letter single-dash flags, which CLI11 cannot name, as hearth spells them.
constexpr std::pair<std::string_view, std::string_view> kLlamaCppFlags[] = {
    {"-fa", "--flash-attn"}, {"-ctk", "--kv-type"}, {"-ngl", "--n-gpu-layers"}};

std::vector<char*> with_long_flag_names(int argc, char** argv) {
    std::vector<char*> args(argv, argv + argc);
    for (char*& arg : args) {
        for (const auto& [short_name, long_name] : kLlamaCppFlags)
            if (arg == short_name) arg = const_cast<char*>(long_name.data());
    }
    return args;
}

}  // namespace

int run(int argc, char** argv) {
    CLI::App app{
        "hearth: run Llama-family models from GGUF files on your own machine, on CPU or CUDA.\n"
        "Every verb has its own help: hearth <verb> --help"};
    app.set_version_flag("--version", std::string("hearth ") + kVersion);
    app.require_subcommand(1);
    app.footer(
        "Examples:\n"
        "  hearth make-test-model --preset tiny -o tiny.gguf    write a small random-weight Llama 3.1\n"
        "  hearth quantize tiny.gguf tiny-q4_k_m.gguf Q4_K_M      quantize it like llama-quantize\n"
        "  hearth show tiny-q4_k_m.gguf                           what is in a GGUF file");
    add_show(app);
    add_quantize(app);
    add_make_test_model(app);
    add_tokenize(app);
    add_detokenize(app);
    add_chat_template(app);
    add_run(app);
    add_bench(app);
    add_estimate(app);
    add_perplexity(app);
    try {
        std::vector<char*> args = with_long_flag_names(argc, argv);
        app.parse(static_cast<int>(args.size()), args.data());
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {  // a bug, but still a message and an exit code, not abort()
        std::fprintf(stderr, "error: unexpected failure: %s\n", e.what());
        return 1;
    }
    return 0;
}

}  // namespace hearth::cli
