// hearth perplexity: how well a model predicts a text, computed as llama-perplexity computes it
// (chunks of -c tokens, the second half of each scored), so the figures compare.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/cli.h"
#include "cli/kv_type.h"
#include "common/error.h"
#include "common/parallel.h"
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

void perplexity(const PerplexityArgs& args) {
    const std::string text = read_text(args.text_file);
    runtime::LoadOptions options;
    options.threads = args.threads;
    options.context_length = args.context_length;
    options.batch_size = std::min(args.batch_size, args.context_length);
    options.kv_type = parse_kv_type(args.kv_type, "perplexity");
    const auto model = runtime::LoadedModel::load(args.model, options);
    const std::vector<int32_t> tokens = model->tokenizer().encode(text);
    const int64_t n_ctx = args.context_length;
    std::fprintf(stderr, "perplexity: %zu tokens, chunks of %lld (the last %lld of each scored)\n", tokens.size(),
                 static_cast<long long>(n_ctx), static_cast<long long>(n_ctx - 1 - n_ctx / 2));
    const measure::PerplexityResult result =
        measure::compute_perplexity(*model, tokens, n_ctx, args.chunks, [](const measure::PerplexityResult& r) {
            std::printf("%s[%lld]%.4f", r.chunks == 1 ? "" : ",", static_cast<long long>(r.chunks), r.perplexity);
            std::fflush(stdout);
        });
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", result.perplexity, result.perplexity_error);
    std::fprintf(stderr, "perplexity: %lld chunks, %lld tokens scored, mean NLL %.6f\n",
                 static_cast<long long>(result.chunks), static_cast<long long>(result.scored_tokens), result.mean_nll);
}

}  // namespace

void add_perplexity(CLI::App& app) {
    auto args = std::make_shared<PerplexityArgs>();
    CLI::App* cmd = app.add_subcommand(
        "perplexity", "Perplexity of a model on a text, computed as llama-perplexity computes it");
    cmd->add_option("-m,--model", args->model, "GGUF model file")->required();
    cmd->add_option("-f,--file", args->text_file, "Text file to score")->required();
    cmd->add_option("-c,--ctx-size", args->context_length, "Tokens per chunk; the second half of each is scored")
        ->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 24));
    cmd->add_option("-b,--batch-size", args->batch_size, "Tokens per forward pass (at most the chunk)")
        ->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--chunks", args->chunks, "Score at most this many chunks (-1: all)")->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "Threads (0: one per core)")->capture_default_str();
    cmd->add_option("--kv-type", args->kv_type, "KV cache type: f16 or q8_0 (also -ctk)")->capture_default_str();
    cmd->footer(
        "Prints the running estimate after each chunk ([1]x,[2]y,...), then the final PPL ± its\n"
        "standard error, as llama-perplexity does; random-weight test models give meaningless absolute\n"
        "values, but comparing quantizations of one model on one text is meaningful.\n\n"
        "Example:\n"
        "  hearth perplexity -m model.gguf -f wiki.test.raw -c 512 --chunks 20");
    cmd->callback([args] { perplexity(*args); });
}

}  // namespace hearth::cli
