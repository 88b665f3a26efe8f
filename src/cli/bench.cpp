// hearth bench: prompt (pp) and decode (tg) speed of a model, measured as llama-bench measures
// them (the same flags, several values each), plus time to first token, and decode as GB/s
// against the read bandwidth this machine shows right before each decode test.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/backend_option.h"
#include "cli/bench_server.h"
#include "cli/cli.h"
#include "cli/kv_type.h"
#include "cli/progress.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/parallel.h"
#include "measure/bench_runner.h"
#include "quant/quant.h"

namespace hearth::cli {
namespace {

struct BenchArgs {
    std::string model;
    std::vector<int64_t> prompt_sizes{512};
    std::vector<int64_t> generate_sizes{128};
    std::vector<int64_t> depths{0};
    std::vector<int> threads{0};
    std::vector<std::string> kv_types{"f16"};
    std::vector<std::string> flash_attention{"on"};
    std::vector<int> streams{1};
    bool greedy_on_device = false;
    BackendArgs backend;
    std::string output = "table";
    std::string plot;
    int repetitions = 5;
    int64_t batch_size = 512;
    bool bandwidth_only = false;
    ServerBenchArgs server;
};

bool parse_flash_attention(const std::string& value) {
    if (value == "on" || value == "1" || value == "auto") return true;
    if (value == "off" || value == "0") return false;
    fail("bench: -fa {}: give on or off", value);
}

measure::BenchRequest request_of(const BenchArgs& args) {
    measure::BenchRequest request;
    request.prompt_sizes = args.prompt_sizes;
    request.generate_sizes = args.generate_sizes;
    request.depths = args.depths;
    request.threads.clear();
    for (const int t : args.threads) request.threads.push_back(t > 0 ? t : default_thread_count());
    request.kv_types.clear();
    for (const std::string& name : args.kv_types) request.kv_types.push_back(parse_kv_type(name, "bench"));
    request.flash_attention.clear();
    for (const std::string& fa : args.flash_attention) request.flash_attention.push_back(parse_flash_attention(fa));
    request.streams = args.streams;
    request.batch_size = args.batch_size;
    return request;
}

void print(const std::string& text) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
}

void bench(const BenchArgs& args) {
    if (!args.server.url.empty()) {
        bench_server(args.server, args.output, args.plot);
        return;
    }
    if (args.bandwidth_only) {
        const int threads = args.threads.front() > 0 ? args.threads.front() : default_thread_count();
        const runtime::BackendChoice choice =
            runtime::choose_backend(parse_backend(args.backend, "bench"), args.backend.device, threads, nullptr);
        const std::string where = choice.backend->name() == "cpu" ? fmt::format("cpu, {} threads", threads) : "cuda";
        std::printf("read bandwidth (%s): %.1f GB/s\n", where.c_str(), choice.backend->measure_read_bandwidth() / 1e9);
        return;
    }
    if (args.model.empty()) fail("bench: give a model with -m (or --bandwidth, or --server URL)");
    const auto format = measure::parse_bench_format(args.output);
    if (!format) fail("bench: -o {}: give table, md, csv or json", args.output);

    measure::BenchRun run;
    run.model = args.model;
    run.request = request_of(args);
    run.repetitions = args.repetitions;
    run.warmup_each_test = !args.server.no_warmup;
    run.greedy_on_device = args.greedy_on_device;
    run.backend = parse_backend(args.backend, "bench");
    run.device = args.backend.device;
    run.gpu_layers = args.backend.gpu_layers;
    // Progress only on a terminal: in a log or a pipe it would interleave with the results.
    const bool show_progress = isatty(STDERR_FILENO) == 1;
    ProgressBar progress("bench", "repetitions");
    measure::BenchCallbacks callbacks;
    callbacks.started = [&](const measure::BenchReport& report) { print(measure::format_preamble(report, *format)); };
    callbacks.finished_test = [&](const measure::BenchReport& report, const measure::BenchResult& result) {
        progress.clear_line();
        print(measure::format_result(report, result, *format));
    };
    if (show_progress) {
        callbacks.progress = [&](int64_t done, int64_t total) {
            progress.update(static_cast<uint64_t>(done), static_cast<uint64_t>(total));
        };
    }
    const measure::BenchReport report = measure::run_bench(run, callbacks);
    if (show_progress) progress.finish();
    print(measure::format_ending(report, *format));
    if (!args.plot.empty()) {
        write_file_atomically(args.plot, measure::plot_svg(report));
        std::fprintf(stderr, "bench: wrote %s\n", args.plot.c_str());
    }
}

}  // namespace

void add_bench(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "Measure prompt (pp) and decode (tg) tokens per second, time to first token, and decode against the memory "
        "bandwidth; or a running server's under concurrent requests (--server)");
    cmd->add_option("-m,--model", args->model, "GGUF model file");
    cmd->add_option("-p,--n-prompt", args->prompt_sizes, "Prompt sizes to time (pp); 0 skips")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("-n,--n-gen", args->generate_sizes, "Decode lengths to time (tg); 0 skips")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("-d,--n-depth", args->depths, "Tokens already in the context before each test (not timed)")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--streams,--npl", args->streams,
                    "Sequences decoding together (tg tests): each forward pass takes one token of each, as "
                    "llama-batched-bench's -npl; t/s is the total over all of them")
        ->delimiter(',')->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_flag("--greedy-on-device", args->greedy_on_device,
                  "With --streams: each pass's greedy tokens are found on the backend (GPU) and only they are read "
                  "back, as a server decoding greedily would; without it every row's logits are copied to the host, "
                  "as llama-batched-bench does");
    cmd->add_option("-r,--repetitions", args->repetitions, "Repetitions of each test")->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("-t,--threads", args->threads, "Threads (0: one per core)")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("-b,--batch-size", args->batch_size, "Prompt tokens per forward pass")->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--kv-type", args->kv_types, "KV cache type: f16 or q8_0 (also -ctk)")->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--flash-attn", args->flash_attention,
                    "Flash attention (also -fa): on streams over the cache; off computes every score of a row "
                    "first, as llama.cpp does without it (CPU only)")
        ->delimiter(',')->capture_default_str();
    add_backend_options(cmd, args->backend);
    cmd->add_option("-o,--output", args->output, "table, md (llama-bench's), csv or json (docs/bench-json.md)")
        ->capture_default_str();
    cmd->add_option("--plot", args->plot, "Also draw tok/s against depth (--server: concurrency) into this SVG file");
    cmd->add_flag("--bandwidth", args->bandwidth_only, "Only measure the memory read bandwidth");
    cmd->footer(
        "Each test runs after a warm-up of 50 tokens and one untimed run of its own (as llama-bench), R times\n"
        "with fixed-seed random tokens; the table gives mean ± stdev. Decode tests also give GB/s (weight\n"
        "bytes read per token × tok/s) and its share of the read bandwidth probed just before the test.\n\n"
        "Examples:\n"
        "  hearth bench -m model.gguf                              pp512 and tg128, 5 repetitions\n"
        "  hearth bench -m model.gguf -p 64,512 -n 128 -d 0,4096   each size at each depth\n"
        "  hearth bench -m model.gguf -t 1,2 --kv-type f16,q8_0 -o json > runs.json\n"
        "  hearth bench -m model.gguf -p 512 -n 128 -d 0,1024,4096 --plot depth.svg\n"
        "  hearth bench --bandwidth                                the read-bandwidth probe alone");
    add_server_bench_options(*cmd, args->server);
    cmd->callback([args] { bench(*args); });
}

}  // namespace hearth::cli
