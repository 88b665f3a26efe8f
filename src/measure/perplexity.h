// Perplexity as llama.cpp's llama-perplexity computes it, so the figures compare: the text's
// tokens (BOS first) cut into non-overlapping chunks of n_ctx; each chunk starts over at
// position 0 with its first token replaced by BOS, and only its second half is scored (each of
// those tokens sees at least n_ctx/2 of context). PPL = exp(mean negative log-likelihood), with
// the uncertainty llama-perplexity prints: PPL × the standard error of the mean NLL.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runtime/model_loader.h"

namespace hearth::measure {

struct PerplexityResult {
    int64_t chunks = 0;
    int64_t scored_tokens = 0;
    double nll_sum = 0, nll_squares = 0;  // over the scored tokens
    double mean_nll = 0;
    double perplexity = 0;
    double perplexity_error = 0;         // 0 with fewer than two scored tokens
    std::vector<double> running;         // the estimate after each chunk, as llama-perplexity prints it
};

// Sees each scored position's logits, the token that follows and its negative log-likelihood,
// in order.
using ScoredPositionFn = std::function<void(std::span<const float> logits, int32_t next_token, double nll)>;

// tokens: the whole text, tokenized with BOS. chunk_tokens = n_ctx; max_chunks < 0 takes every
// whole chunk. Throws hearth::Error when the tokens do not make one chunk or n_ctx is below 2 or
// above the loaded model's context. (llama-perplexity asks a text for two chunks at least; the
// CLI does too.)
PerplexityResult compute_perplexity(const runtime::LoadedModel& model, std::span<const int32_t> tokens,
                                    int64_t chunk_tokens, int64_t max_chunks = -1,
                                    const std::function<void(const PerplexityResult&)>& after_chunk = {},
                                    const ScoredPositionFn& scored = {});

// -log softmax(logits)[target], in double: the max subtracted first, as llama.cpp does.
double negative_log_likelihood(std::span<const float> logits, int32_t target);

}  // namespace hearth::measure
