// hearth bench: prompt (pp) and decode (tg) speed of a model, measured as llama-bench measures
// them, with decode also as GB/s and as a share of the read bandwidth this machine measures
// right before each decode test (the ceiling: every weight is read once per token).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/cpu/bandwidth.h"
#include "cli/cli.h"
#include "common/error.h"
#include "common/parallel.h"
#include "runtime/model_loader.h"
#include "runtime/session.h"

namespace hearth::cli {
namespace {

struct BenchArgs {
    std::string model;
    std::vector<int64_t> prompt_sizes{512};
    std::vector<int64_t> generate_sizes{128};
    int repetitions = 5;
    int threads = 0;
    int64_t batch_size = 512;
    bool bandwidth_only = false;
};

struct Summary {
    double mean = 0, stdev = 0;
};

Summary summarize(const std::vector<double>& values) {
    Summary s;
    for (double v : values) s.mean += v;
    s.mean /= static_cast<double>(values.size());
    for (double v : values) s.stdev += (v - s.mean) * (v - s.mean);
    s.stdev = values.size() > 1 ? std::sqrt(s.stdev / static_cast<double>(values.size() - 1)) : 0;
    return s;
}

std::vector<int32_t> random_tokens(int64_t count, int64_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(std::min<int64_t>(vocab, 128000) - 1));
    std::vector<int32_t> tokens(count);
    for (int32_t& t : tokens) t = pick(rng);
    return tokens;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Prompt processing: `size` tokens into an empty context, in batches.
double prompt_tokens_per_second(runtime::Session& session, const std::vector<int32_t>& tokens) {
    session.clear();
    const auto start = std::chrono::steady_clock::now();
    session.evaluate(tokens);
    return static_cast<double>(tokens.size()) / seconds_since(start);
}

// Decoding: `size` tokens one at a time after one token of context.
double decode_tokens_per_second(runtime::Session& session, const std::vector<int32_t>& tokens) {
    session.clear();
    session.evaluate(std::span(tokens).first(1));
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 1; i < tokens.size(); ++i) session.evaluate(std::span(tokens).subspan(i, 1));
    return static_cast<double>(tokens.size() - 1) / seconds_since(start);
}

void bench(const BenchArgs& args) {
    const int threads = args.threads > 0 ? args.threads : default_thread_count();
    cpu::ThreadPool probe_pool(threads);
    const double bandwidth = cpu::measure_read_bandwidth(probe_pool);
    std::printf("read bandwidth (%d threads, 1 GiB, best of 5): %.1f GB/s\n", threads, bandwidth / 1e9);
    if (args.bandwidth_only) return;

    int64_t context = 16;
    for (int64_t p : args.prompt_sizes) context = std::max(context, p);
    for (int64_t n : args.generate_sizes) context = std::max(context, n + 1);
    runtime::LoadOptions options;
    options.threads = threads;
    options.context_length = context;
    options.batch_size = args.batch_size;
    const auto model = runtime::LoadedModel::load(args.model, options);
    runtime::Session session(*model);
    const int64_t vocab = model->hparams().vocab_size;
    const double bytes_per_token = static_cast<double>(model->llama().weight_bytes_read_per_token());

    std::printf("model: %s, %.2f GB read per token, %d threads, %d repetitions\n\n", args.model.c_str(),
                bytes_per_token / 1e9, threads, args.repetitions);
    std::printf("| test | t/s | GB/s | %% of read bandwidth (GB/s, probed just before) |\n| --- | ---: | ---: | ---: |\n");
    // Warm-up: pages the weights in and wakes the pool; not counted.
    decode_tokens_per_second(session, random_tokens(8, vocab, 1));
    for (int64_t size : args.prompt_sizes) {
        if (size == 0) continue;  // -p 0: decode only, as in llama-bench
        std::vector<double> rates;
        const auto tokens = random_tokens(size, vocab, 2);
        for (int r = 0; r < args.repetitions; ++r) rates.push_back(prompt_tokens_per_second(session, tokens));
        const Summary s = summarize(rates);
        std::printf("| pp%lld | %.2f ± %.2f | | |\n", static_cast<long long>(size), s.mean, s.stdev);
        std::fflush(stdout);
    }
    for (int64_t size : args.generate_sizes) {
        if (size == 0) continue;
        // The bandwidth of a shared machine drifts within minutes: the ceiling each decode test
        // is held against is probed right before it.
        const double ceiling = cpu::measure_read_bandwidth(probe_pool);
        std::vector<double> rates;
        const auto tokens = random_tokens(size + 1, vocab, 3);
        for (int r = 0; r < args.repetitions; ++r) rates.push_back(decode_tokens_per_second(session, tokens));
        const Summary s = summarize(rates);
        const double achieved = s.mean * bytes_per_token;
        std::printf("| tg%lld | %.2f ± %.2f | %.1f | %.0f %% of %.1f |\n", static_cast<long long>(size), s.mean,
                    s.stdev, achieved / 1e9, 100 * achieved / ceiling, ceiling / 1e9);
        std::fflush(stdout);
    }
}

}  // namespace

void add_bench(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench", "Measure prompt (pp) and decode (tg) tokens per second, and decode against the memory bandwidth");
    cmd->add_option("-m,--model", args->model, "GGUF model file");
    cmd->add_option("-p,--n-prompt", args->prompt_sizes, "Prompt sizes to time (pp); 0 skips")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("-n,--n-gen", args->generate_sizes, "Decode lengths to time (tg); 0 skips")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("-r,--repetitions", args->repetitions, "Repetitions of each test")->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("-t,--threads", args->threads, "Threads (0: one per core)")->capture_default_str();
    cmd->add_option("-b,--batch-size", args->batch_size, "Prompt tokens per forward pass")->capture_default_str();
    cmd->add_flag("--bandwidth", args->bandwidth_only, "Only measure the memory read bandwidth");
    cmd->footer("Example:\n  hearth bench -m model.gguf -p 512 -n 128 -r 5 -t 2");
    cmd->callback([args] {
        if (args->model.empty() && !args->bandwidth_only) fail("bench: give a model with -m (or --bandwidth)");
        bench(*args);
    });
}

}  // namespace hearth::cli
