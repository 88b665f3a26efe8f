// hearth perplexity: how well a model predicts a text, computed as llama-perplexity computes it
// (chunks of -c tokens, the second half of each scored), so the figures compare.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/backend_option.h"
#include "cli/cli.h"
#include "cli/kv_type.h"
#include "common/error.h"
#include "common/parallel.h"
#include "measure/kl_divergence.h"
#include "measure/perplexity.h"
#include "quant/quant.h"
#include "runtime/model_loader.h"

namespace hearth::cli {
namespace {

struct PerplexityArgs {
    std::string model;
    std::string text_file;
    int64_t context_length = 512;
    int64_t batch_size = 2048;
    int64_t chunks = -1;
    int threads = 0;
    std::string kv_type = "f16";
    BackendArgs backend;
    std::string kld_base;
    bool kl_divergence = false;
};

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("perplexity: cannot read the text file '{}'", path);
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) fail("perplexity: error reading '{}'", path);
    if (text.str().empty()) fail("perplexity: the text file '{}' is empty", path);
    return text.str();
}

runtime::LoadOptions load_options(const PerplexityArgs& args, int64_t n_ctx) {
    runtime::LoadOptions options;
    options.threads = args.threads;
    options.context_length = n_ctx;
    options.batch_size = std::min(args.batch_size, n_ctx);
    options.kv_type = parse_kv_type(args.kv_type, "perplexity");
    set_backend_options(options, args.backend, "perplexity");
    return options;
}

void print_running(const measure::PerplexityResult& r) {
    std::printf("%s[%lld]%.4f", r.chunks == 1 ? "" : ",", static_cast<long long>(r.chunks), r.perplexity);
    std::fflush(stdout);
}

// --kl-divergence: the chunks, context and tokens come from the base file.
void kl_divergence(const PerplexityArgs& args) {
    if (args.kld_base.empty()) fail("perplexity: --kl-divergence compares with a base file: give --kl-divergence-base FILE");
    const measure::KldBaseHeader header = measure::read_kld_base_header(args.kld_base);
    const auto model = runtime::LoadedModel::load(args.model, load_options(args, header.n_ctx));
    std::fprintf(stderr, "perplexity: %lld chunks of %lld tokens from %s\n", static_cast<long long>(header.chunks),
                 static_cast<long long>(header.n_ctx), args.kld_base.c_str());
    const measure::KldResult result = measure::compute_kl_divergence(*model, args.kld_base, header, print_running);
    std::printf("\n\n%s", measure::format_kl_divergence(result).c_str());
}

void perplexity(const PerplexityArgs& args) {
    if (args.kl_divergence) return kl_divergence(args);
    if (args.text_file.empty()) fail("perplexity: give a text to score with -f");
    const std::string text = read_text(args.text_file);
    const int64_t n_ctx = args.context_length;
    const auto model = runtime::LoadedModel::load(args.model, load_options(args, n_ctx));
    const std::vector<int32_t> tokens = model->tokenizer().encode(text);
    if (static_cast<int64_t>(tokens.size()) < 2 * n_ctx)
        fail("perplexity: the text has {} tokens; chunks of {} need at least {} (2 × the context, as llama.cpp asks)",
             tokens.size(), n_ctx, 2 * n_ctx);
    std::fprintf(stderr, "perplexity: %zu tokens, chunks of %lld (the last %lld of each scored)\n", tokens.size(),
                 static_cast<long long>(n_ctx), static_cast<long long>(n_ctx - 1 - n_ctx / 2));
    std::unique_ptr<measure::KldBaseWriter> base;
    if (!args.kld_base.empty()) {
        const int64_t whole = static_cast<int64_t>(tokens.size()) / n_ctx;
        const int64_t chunks = args.chunks < 0 ? whole : std::min(whole, args.chunks);
        measure::KldBaseHeader header{n_ctx, model->hparams().vocab_size, chunks,
                                      std::vector<int32_t>(tokens.begin(), tokens.begin() + chunks * n_ctx)};
        base = std::make_unique<measure::KldBaseWriter>(args.kld_base, header);
    }
    const measure::PerplexityResult result = measure::compute_perplexity(
        *model, tokens, n_ctx, args.chunks, print_running,
        base ? measure::ScoredPositionFn([&](std::span<const float> logits, int32_t, double) { base->add(logits); })
             : measure::ScoredPositionFn{});
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", result.perplexity, result.perplexity_error);
    std::fprintf(stderr, "perplexity: %lld chunks, %lld tokens scored, mean NLL %.6f\n",
                 static_cast<long long>(result.chunks), static_cast<long long>(result.scored_tokens), result.mean_nll);
    if (base) {
        base->commit();
        std::fprintf(stderr, "perplexity: wrote the base log-probabilities to %s\n", args.kld_base.c_str());
    }
}

}  // namespace

void add_perplexity(CLI::App& app) {
    auto args = std::make_shared<PerplexityArgs>();
    CLI::App* cmd = app.add_subcommand(
        "perplexity", "Perplexity of a model on a text, computed as llama-perplexity computes it");
    cmd->add_option("-m,--model", args->model, "GGUF model file")->required();
    cmd->add_option("-f,--file", args->text_file, "Text file to score");
    cmd->add_option("-c,--ctx-size", args->context_length, "Tokens per chunk; the second half of each is scored")
        ->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 24));
    cmd->add_option("-b,--batch-size", args->batch_size, "Tokens per forward pass (at most the chunk)")
        ->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--chunks", args->chunks, "Score at most this many chunks (-1: all)")->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "Threads (0: one per core)")->capture_default_str();
    add_backend_options(cmd, args->backend);
    cmd->add_option("--kv-type", args->kv_type, "KV cache type: f16 or q8_0 (also -ctk)")->capture_default_str();
    cmd->add_option("--kl-divergence-base", args->kld_base,
                    "With -f: also write the model's log-probabilities here (llama-perplexity's format). With "
                    "--kl-divergence: the base to compare with");
    cmd->add_flag("--kl-divergence", args->kl_divergence,
                  "Compare this model with the base file over its tokens: KL divergence, Δp, same top token, PPL ratio");
    cmd->footer(
        "Prints the running estimate after each chunk ([1]x,[2]y,...), then the final PPL ± its\n"
        "standard error, as llama-perplexity does; random-weight test models give meaningless absolute\n"
        "values, but comparing quantizations of one model on one text is meaningful.\n\n"
        "Examples:\n"
        "  hearth perplexity -m model.gguf -f wiki.test.raw -c 512 --chunks 20\n"
        "  hearth perplexity -m f16.gguf -f wiki.test.raw --kl-divergence-base f16.kld\n"
        "  hearth perplexity -m q4_k_m.gguf --kl-divergence-base f16.kld --kl-divergence\n"
        "Base files are interchangeable with llama-perplexity's, both ways.");
    cmd->callback([args] { perplexity(*args); });
}

}  // namespace hearth::cli
