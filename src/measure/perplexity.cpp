#include "measure/perplexity.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace hearth::measure {

double negative_log_likelihood(std::span<const float> logits, int32_t target) {
    const float largest = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (const float logit : logits) sum += std::exp(static_cast<double>(logit) - largest);
    return std::log(sum) - (static_cast<double>(logits[target]) - largest);
}

PerplexityResult compute_perplexity(const runtime::LoadedModel& model, std::span<const int32_t> tokens,
                                    int64_t chunk_tokens, int64_t max_chunks,
                                    const std::function<void(const PerplexityResult&)>& after_chunk,
                                    const ScoredPositionFn& scored) {
    const int64_t n_ctx = chunk_tokens;
    if (n_ctx < 2) fail("perplexity: a context of {} tokens leaves nothing to score (at least 2)", n_ctx);
    if (n_ctx > model.options().context_length)
        fail("perplexity: chunks of {} tokens do not fit the loaded context of {}", n_ctx,
             model.options().context_length);
    const int64_t available = static_cast<int64_t>(tokens.size()) / n_ctx;
    if (available < 1) fail("perplexity: {} tokens do not make one chunk of {}", tokens.size(), n_ctx);
    const int64_t chunks = max_chunks < 0 ? available : std::min(available, max_chunks);
    const model::Llama& llama = model.llama();
    const int64_t vocab = model.hparams().vocab_size;
    const int64_t batch = std::min(model.options().batch_size, n_ctx);
    model::LlamaWorkspace workspace = llama.make_workspace(batch, batch);
    const auto cache = llama.create_kv_cache(n_ctx, model.options().kv_type);
    const int32_t bos = model.tokenizer().bos_id();
    std::vector<float> logits(static_cast<size_t>(batch * vocab));

    PerplexityResult result;
    const int64_t first_scored = n_ctx / 2;
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    for (int64_t c = 0; c < chunks; ++c) {
        std::copy_n(tokens.begin() + c * n_ctx, n_ctx, chunk.begin());
        if (bos >= 0 && model.tokenizer().adds_bos()) chunk[0] = bos;
        for (int64_t start = 0; start < n_ctx; start += batch) {
            const int64_t count = std::min(batch, n_ctx - start);
            llama.forward(workspace, *cache, std::span(chunk).subspan(start, count), start,
                          std::span(logits).first(count * vocab), true);
            // Position j's logits predict token j + 1; score j in [n_ctx/2, n_ctx - 1).
            for (int64_t j = std::max(start, first_scored); j < std::min(start + count, n_ctx - 1); ++j) {
                const std::span<const float> row = std::span(logits).subspan((j - start) * vocab, vocab);
                const double nll = negative_log_likelihood(row, chunk[j + 1]);
                if (scored) scored(row, chunk[j + 1], nll);
                result.nll_sum += nll;
                result.nll_squares += nll * nll;
                ++result.scored_tokens;
            }
        }
        result.chunks = c + 1;
        const double n = static_cast<double>(result.scored_tokens);
        result.mean_nll = result.nll_sum / n;
        result.perplexity = std::exp(result.mean_nll);
        const double variance = result.nll_squares / n - result.mean_nll * result.mean_nll;
        result.perplexity_error = n > 1 && variance > 0 ? std::sqrt(variance / (n - 1)) * result.perplexity : 0;
        result.running.push_back(result.perplexity);
        if (after_chunk) after_chunk(result);
    }
    return result;
}

}  // namespace hearth::measure
