// `hearth <verb>`: the command line. Each verb lives in its own file and registers itself on
// the CLI11 app; run() parses, dispatches and turns hearth::Error into a message and exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace hearth::cli {

int run(int argc, char** argv);

// Verb registration; each adds a subcommand whose callback does the work.
void add_show(CLI::App& app);
void add_quantize(CLI::App& app);
void add_make_test_model(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_detokenize(CLI::App& app);
void add_chat_template(CLI::App& app);
void add_run(CLI::App& app);
void add_bench(CLI::App& app);
void add_estimate(CLI::App& app);
void add_perplexity(CLI::App& app);

}  // namespace hearth::cli
