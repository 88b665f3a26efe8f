#include "cli/bench_server.h"

#include <unistd.h>

#include <cstdio>
#include <random>

#include "cli/progress.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "measure/server_bench.h"
#include "measure/server_bench_report.h"

namespace hearth::cli {
namespace {

void print(const std::string& text) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
}

}  // namespace

void bench_server(const ServerBenchArgs& args, const std::string& output, const std::string& plot) {
    const auto format = measure::parse_bench_format(output);
    if (!format) fail("bench: -o {}: give table, md, csv or json", output);
    const auto api = measure::parse_server_api(args.api);
    if (!api) fail("bench: --api {}: give ollama or openai", args.api);

    measure::ServerBenchRun run;
    run.url = args.url;
    run.api = *api;
    run.model = args.model_name;
    run.concurrency = args.concurrency;
    run.prompt_tokens = args.prompt_tokens;
    run.generate_tokens = args.generate_tokens;
    run.requests_per_level = args.requests;
    run.timeout_seconds = args.timeout_seconds;
    run.warmup = !args.no_warmup;
    // A run reuses no earlier run's prompts unless asked to: a server keeps recent prompts in its
    // cache (llama-server's slots do), and a rerun with the same prompts would time cache hits.
    run.seed = args.seed != 0 ? args.seed : 1 + std::random_device{}() % 0x7ffffffe;

    // Progress only on a terminal: in a log or a pipe it would interleave with the results.
    const bool show_progress = isatty(STDERR_FILENO) == 1;
    ProgressBar progress("bench", "requests");
    measure::ServerBenchCallbacks callbacks;
    callbacks.started = [&](const measure::ServerBenchReport& report) {
        if (!report.warmup_error.empty())
            std::fprintf(
                stderr, "bench: the warm-up request failed after the server began answering (%s); going on\n",
                report.warmup_error.c_str());
        print(measure::format_server_preamble(report, *format));
    };
    callbacks.finished_level = [&](const measure::ServerBenchReport& report,
                                   const measure::ServerLevelResult& level) {
        progress.clear_line();
        print(measure::format_server_level(report, level, *format));
    };
    if (show_progress) {
        callbacks.progress = [&](int64_t done, int64_t total) {
            progress.update(static_cast<uint64_t>(done), static_cast<uint64_t>(total));
        };
    }
    const measure::ServerBenchReport report = measure::run_server_bench(run, callbacks);
    if (show_progress) progress.finish();
    print(measure::format_server_ending(report, *format));
    if (!plot.empty()) {
        write_file_atomically(plot, measure::plot_server_svg(report));
        std::fprintf(stderr, "bench: wrote %s\n", plot.c_str());
    }
    int ok = 0;
    for (const measure::ServerLevelResult& level : report.levels) ok += level.requests_ok;
    if (ok == 0)
        fail("bench: every request to {} failed; the first: {}", report.url,
             report.levels.front().first_error);
}

void add_server_bench_options(CLI::App& bench, ServerBenchArgs& args) {
    CLI::Option* server =
        bench.add_option("--server", args.url,
                         "Measure a running server instead of a model file: http://HOST:PORT, e.g. "
                         "http://localhost:11434 (Ollama), http://localhost:8080 (llama-server)");
    CLI::Option* server_only[] = {
        bench
            .add_option("--concurrency", args.concurrency,
                        "Server: requests in flight at once, one level each")
            ->delimiter(',')
            ->capture_default_str()
            ->check(CLI::PositiveNumber),
        bench
            .add_option(
                "--prompt-tokens", args.prompt_tokens,
                "Server: prompt size, approximate: that many random common words, one Llama 3 token each "
                "(the server's own count is reported where it gives one)")
            ->capture_default_str()
            ->check(CLI::PositiveNumber),
        bench.add_option("--gen-tokens", args.generate_tokens, "Server: tokens to generate per request")
            ->capture_default_str()
            ->check(CLI::PositiveNumber),
        bench
            .add_option("--api", args.api,
                        "Server: ollama (POST /api/generate) or openai (POST /v1/completions)")
            ->capture_default_str()
            ->check(CLI::IsMember({"ollama", "openai"})),
        bench
            .add_option("--requests", args.requests,
                        "Server: requests per level (default: 2 × concurrency, at least 4)")
            ->check(CLI::PositiveNumber),
        bench.add_option("--model-name", args.model_name,
                         "Server: the model to ask for (default: the first the server lists)"),
        bench
            .add_option("--timeout", args.timeout_seconds, "Server: seconds a request may take, start to end")
            ->capture_default_str()
            ->check(CLI::PositiveNumber),
        bench.add_option(
            "--seed", args.seed,
            "Server: the prompts' seed; the same seed sends the same prompts, which a server may "
            "have cached (default: a new seed each run, in the report)"),
    };
    for (CLI::Option* option : server_only) option->needs(server);
    bench.add_flag("--no-warmup", args.no_warmup,
                   "Skip the untimed runs: with a model, the one before each test's repetitions (the 50 "
                   "warm-up tokens still go first); with --server, the first request (which makes Ollama "
                   "load the model)");
    for (const char* model_flag :
         {"--model", "--n-prompt", "--n-gen", "--n-depth", "--repetitions", "--threads", "--batch-size",
          "--kv-type", "--flash-attn", "--backend", "--device", "--bandwidth", "--streams", "--greedy-on-device"}) {
        if (CLI::Option* option = bench.get_option_no_throw(model_flag)) server->excludes(option);
    }
    bench.footer(
        bench.get_footer() +
        "\n\n"
        "With --server URL, bench measures a running server (hearth, Ollama, llama-server) through its\n"
        "Ollama or OpenAI API. At each concurrency level C, C clients keep C streaming requests in flight\n"
        "until the level's requests are done. Every request has its own prompt (seeded; a new seed each\n"
        "run, so no prefix cache makes it free) and asks for --gen-tokens greedy tokens (openai: with\n"
        "ignore_eos, which llama-server honours). It reports time to first byte of generated text (TTFB)\n"
        "p50/p95/max, mean tok/s per stream, aggregate tok/s (all generated tokens / level time) and\n"
        "failures with the first error. The server's own limits apply: llama-server -np N,\n"
        "OLLAMA_NUM_PARALLEL. -o json is documented in docs/bench-json.md.\n\n"
        "  hearth bench --server http://localhost:11434 --concurrency 1,4,8,16 --prompt-tokens 500 "
        "--gen-tokens 200\n"
        "  hearth bench --server http://localhost:8080 --api openai --concurrency 1,2,4 -o json > load.json\n"
        "  hearth bench --server http://localhost:11434 --model-name llama3.2:1b --plot load.svg");
}

}  // namespace hearth::cli
