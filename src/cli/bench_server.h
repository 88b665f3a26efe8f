// `hearth bench --server URL`: the server mode of `hearth bench` (src/measure/server_bench.h).
// bench.cpp owns the verb; these add the server flags to it and run the server mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace hearth::cli {

struct ServerBenchArgs {
    std::string url;
    std::vector<int> concurrency{1, 4, 8, 16};
    int prompt_tokens = 500;
    int generate_tokens = 200;
    std::string api = "ollama";
    int requests = 0;  // per level; 0: 2 × concurrency, at least 4
    std::string model_name;
    double timeout_seconds = 300;
    bool no_warmup = false;
    uint64_t seed = 0;  // 0: a new one each run, so a rerun misses the server's prompt cache
};

// Adds --server and its flags to `bench`; call after the model-mode flags, which --server excludes.
void add_server_bench_options(CLI::App& bench, ServerBenchArgs& args);

// `output` and `plot` are bench's -o and --plot.
void bench_server(const ServerBenchArgs& args, const std::string& output, const std::string& plot);

}  // namespace hearth::cli
