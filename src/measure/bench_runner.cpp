#include "measure/bench_runner.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>

#include <fmt/format.h>

#include "backend/cpu/matmul.h"
#include "common/cpu_features.h"
#include "common/error.h"
#include "common/version.h"
#include "quant/mix.h"
#include "runtime/kv_blocks.h"
#include "runtime/model_loader.h"
#include "runtime/session.h"

namespace hearth::measure {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::vector<int32_t> random_tokens(int64_t count, int64_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    // Ordinary tokens only: Llama 3's special tokens start at 128000.
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(std::min<int64_t>(vocab, 128000) - 1));
    std::vector<int32_t> tokens(static_cast<size_t>(count));
    for (int32_t& t : tokens) t = pick(rng);
    return tokens;
}

std::string cpu_description() {
    const CpuFeatures& f = cpu_features();
    return fmt::format("x86-64 {}{}", cpu::isa_name(cpu::best_isa()), f.avx512_vnni ? " (VNNI)" : "");
}

// "llama 1B Q4_K_M", as llama-bench names a model: architecture, size label, file type.
std::string describe_model(const gguf::File& file, uint64_t parameters) {
    const std::string arch = file.find_string("general.architecture").value_or("unknown");
    std::string size = file.find_string("general.size_label").value_or("");
    if (size.empty()) size = fmt::format("{:.1f}B", static_cast<double>(parameters) / 1e9);
    std::string type = "unknown type";
    if (const auto file_type = file.find_int("general.file_type")) {
        if (const auto name = quant::file_type_name(static_cast<uint32_t>(*file_type))) type = std::string(*name);
    }
    return fmt::format("{} {} {}", arch, size, type);
}

uint64_t parameter_count(const gguf::File& file) {
    uint64_t total = 0;
    for (const gguf::TensorInfo& tensor : file.tensors()) total += static_cast<uint64_t>(tensor.element_count());
    return total;
}

// Brings the session to exactly `depth` tokens of the fill sequence, evaluating only what it
// does not already hold (tests at the same depth share one fill).
void fill_to_depth(runtime::Session& session, const std::vector<int32_t>& fill, int64_t depth) {
    const std::vector<int32_t>& held = session.tokens();
    int64_t common = 0;
    const int64_t limit = std::min<int64_t>(static_cast<int64_t>(held.size()), depth);
    while (common < limit && held[common] == fill[common]) ++common;
    session.truncate(common);
    if (common < depth) session.evaluate(std::span(fill).subspan(common, depth - common));
}

int32_t greedy(std::span<const float> logits) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

struct Measurement {
    double tokens_per_second = 0;
    double time_to_first_token_ms = 0;
};

Measurement time_prompt(runtime::Session& session, const std::vector<int32_t>& prompt) {
    const auto start = Clock::now();
    const std::span<const float> logits = session.evaluate(prompt);
    const double evaluated = seconds_since(start);
    static_cast<void>(greedy(logits));  // the first token exists once it is sampled
    const double first_token = seconds_since(start);
    return {static_cast<double>(prompt.size()) / evaluated, 1e3 * first_token};
}

double time_decode(runtime::Session& session, const std::vector<int32_t>& tokens) {
    session.evaluate(std::span(tokens).first(1));  // the token decoding starts from, not timed
    const auto start = Clock::now();
    for (size_t i = 1; i < tokens.size(); ++i) session.evaluate(std::span(tokens).subspan(i, 1));
    return static_cast<double>(tokens.size() - 1) / seconds_since(start);
}

// Batched decoding: `streams` sequences in one paged cache, each filled to `depth` (untimed, a
// sequence at a time), then decoding tokens.size() - 1 steps of one row per sequence in each
// forward pass (their first token untimed), as llama-batched-bench times its TG phase. Returns
// tokens per second over all streams.
class BatchedDecode {
  public:
    BatchedDecode(const model::Llama& llama, quant::Type kv_type, int streams, int64_t depth, int64_t tokens,
                  int64_t batch_size)
        : llama_(llama), streams_(streams), depth_(depth),
          pool_(streams * (backend::kv_capacity_for(depth + tokens + 1) / backend::kKvBlockSize)),
          cache_(llama.create_kv_cache(pool_.total_blocks() * backend::kKvBlockSize, kv_type)),
          workspace_(llama.make_workspace(std::max<int64_t>(streams, std::min(batch_size, std::max<int64_t>(depth, 1))),
                                          streams)),
          logits_(llama.backend().allocate_host(streams * llama.hparams().vocab_size)),
          logits_count_(static_cast<size_t>(streams * llama.hparams().vocab_size)), next_(streams) {
        for (int s = 0; s < streams; ++s) {
            pool_.grow(s, depth + tokens + 1);
            order_.push_back(s);
        }
        table_stride_ = pool_.tables(order_, tables_);
    }

    // Each sequence holds the first `depth` tokens of `fill`, computed once.
    void fill(const std::vector<int32_t>& fill) {
        const int64_t chunk = workspace_.max_tokens;
        for (int s = 0; s < streams_; ++s) {
            const std::vector<int32_t> sequence(static_cast<size_t>(chunk), s);
            std::vector<int32_t> positions;
            for (int64_t first = 0; first < depth_; first += chunk) {
                const int64_t n = std::min(chunk, depth_ - first);
                positions.resize(static_cast<size_t>(n));
                for (int64_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(first + i);
                const backend::KvBatch rows{positions, std::span(sequence).first(n), tables_, table_stride_};
                llama_.forward(workspace_, *cache_, std::span(fill).subspan(first, n), rows, logits());
            }
        }
    }

    // tokens[step * streams + s] is stream s's token at that step. With greedy_on_device, each
    // pass ends in the backend's argmax of every row instead of a copy of every row's logits.
    double time(const std::vector<int32_t>& tokens, bool greedy_on_device) {
        const int64_t steps = static_cast<int64_t>(tokens.size()) / streams_;
        std::vector<int32_t> positions(streams_);
        Clock::time_point start;
        for (int64_t step = 0; step < steps; ++step) {
            if (step == 1) start = Clock::now();  // the first token of each stream is not timed
            std::fill(positions.begin(), positions.end(), static_cast<int32_t>(depth_ + step));
            const backend::KvBatch rows{positions, order_, tables_, table_stride_};
            const std::span<const int32_t> step_tokens = std::span(tokens).subspan(step * streams_, streams_);
            if (greedy_on_device) llama_.forward_greedy(workspace_, *cache_, step_tokens, rows, next_);
            else llama_.forward(workspace_, *cache_, step_tokens, rows, logits(), /*all_logits=*/true);
        }
        return static_cast<double>((steps - 1) * streams_) / seconds_since(start);
    }

  private:
    std::span<float> logits() const { return {logits_.get(), logits_count_}; }

    const model::Llama& llama_;
    int streams_;
    int64_t depth_;
    runtime::KvBlockPool pool_;
    std::unique_ptr<backend::KvCache> cache_;
    model::LlamaWorkspace workspace_;
    backend::HostFloats logits_;
    size_t logits_count_;
    std::vector<int32_t> next_;
    std::vector<int> order_;
    std::vector<int32_t> tables_;
    int64_t table_stride_ = 0;
};

void check_context(const std::vector<BenchTest>& tests, const model::Hparams& hparams) {
    for (const BenchTest& test : tests) {
        if (context_needed(test) > hparams.context_length)
            fail("bench: {} needs {} context positions, more than the model's {}", test_name(test),
                 context_needed(test), hparams.context_length);
    }
}

}  // namespace

BenchReport run_bench(const BenchRun& run, const BenchCallbacks& callbacks) {
    const std::vector<BenchTest> tests = plan_tests(run.request);
    if (tests.empty()) fail("bench: nothing to time (every prompt and decode size is 0)");
    BenchReport report;
    report.hearth_version = kVersion;
    report.started_utc = utc_timestamp_now();
    report.cpu = cpu_description();
    report.cores = static_cast<int>(std::thread::hardware_concurrency());
    report.repetitions = run.repetitions;
    report.warmup_tokens = run.warmup_tokens;
    report.warmup_each_test = run.warmup_each_test;
    report.greedy_on_device = run.greedy_on_device;
    const int untimed = run.warmup_each_test ? 1 : 0;
    const int64_t total_units = static_cast<int64_t>(tests.size()) * (run.repetitions + untimed);
    int64_t done_units = 0;

    for (size_t first = 0; first < tests.size();) {
        // The tests of one config run on one loaded model.
        const BenchConfig config = tests[first].config;
        size_t last = first;
        int64_t context = 64, max_depth = 0;
        while (last < tests.size() && tests[last].config == config) {
            context = std::max(context, context_needed(tests[last]));
            max_depth = std::max(max_depth, tests[last].depth);
            ++last;
        }
        runtime::LoadOptions options;
        options.threads = config.threads;
        options.kv_type = config.kv_type;
        options.batch_size = config.batch_size;
        options.context_length = std::max<int64_t>(context, run.warmup_tokens + 1);
        options.backend = run.backend;
        options.device = run.device;
        options.gpu_layers = run.gpu_layers;
        options.flash_attention = config.flash_attention;
        if (first == 0) {
            // Checked before the real load, so an impossible test fails fast.
            const gguf::File file = gguf::File::open(run.model);
            const model::Hparams hparams = model::read_hparams(file);
            check_context(tests, hparams);
        }
        const auto model = runtime::LoadedModel::load(run.model, options);
        runtime::Session session(*model);
        const int64_t vocab = model->hparams().vocab_size;
        if (first == 0) {
            const uint64_t parameters = parameter_count(model->file());
            report.model = {run.model.string(), describe_model(model->file(), parameters), model->file().file_size(),
                            parameters, model->llama().weight_bytes_read_per_token()};
            report.backend = runtime::describe_placement(model->llama());
            report.bandwidth_at_start = model->llama().layer_backend(0).measure_read_bandwidth();
            if (callbacks.started) callbacks.started(report);
        }
        // Warm-up: most of it as one prompt, the last 8 tokens one at a time.
        const int64_t warm_decode = std::min(run.warmup_tokens, 8);
        const std::vector<int32_t> warm = random_tokens(run.warmup_tokens, vocab, run.seed);
        session.clear();
        if (run.warmup_tokens > warm_decode) session.evaluate(std::span(warm).first(run.warmup_tokens - warm_decode));
        for (int64_t i = run.warmup_tokens - warm_decode; i < run.warmup_tokens; ++i)
            session.evaluate(std::span(warm).subspan(i, 1));
        session.clear();

        const std::vector<int32_t> fill = random_tokens(max_depth, vocab, run.seed + 1);
        for (size_t index = first; index < last; ++index) {
            const BenchTest& test = tests[index];
            BenchResult result{test, {}, std::nullopt, std::nullopt};
            const std::vector<int32_t> tokens =
                random_tokens((test.tokens + (test.kind == BenchKind::Decode ? 1 : 0)) * test.streams, vocab,
                              run.seed + 2 + static_cast<uint32_t>(index));
            std::unique_ptr<BatchedDecode> batched;
            if (test.streams > 1) {
                batched = std::make_unique<BatchedDecode>(model->llama(), config.kv_type, test.streams, test.depth,
                                                          test.tokens, config.batch_size);
                batched->fill(fill);
            }
            // The bandwidth of a shared machine drifts within minutes: each decode test is held
            // against a probe taken right before it.
            if (test.kind == BenchKind::Decode) result.probed_bandwidth = model->llama().layer_backend(0).measure_read_bandwidth();
            std::vector<double> rates, first_token_ms;
            for (int r = -untimed; r < run.repetitions; ++r) {
                const bool timed = r >= 0;
                if (batched) {
                    // Each run decodes from the same depth: later positions are written again.
                    const double rate = batched->time(tokens, run.greedy_on_device);
                    if (timed) rates.push_back(rate);
                    if (callbacks.progress) callbacks.progress(++done_units, total_units);
                    continue;
                }
                fill_to_depth(session, fill, test.depth);
                if (test.kind == BenchKind::Prompt) {
                    const Measurement m = time_prompt(session, tokens);
                    if (timed) rates.push_back(m.tokens_per_second);
                    if (timed) first_token_ms.push_back(m.time_to_first_token_ms);
                } else {
                    const double rate = time_decode(session, tokens);
                    if (timed) rates.push_back(rate);
                }
                if (callbacks.progress) callbacks.progress(++done_units, total_units);
            }
            result.tokens_per_second = summarize(rates);
            if (test.kind == BenchKind::Prompt) result.time_to_first_token_ms = summarize(first_token_ms);
            report.results.push_back(result);
            if (callbacks.finished_test) callbacks.finished_test(report, report.results.back());
        }
        first = last;
    }
    return report;
}

}  // namespace hearth::measure
