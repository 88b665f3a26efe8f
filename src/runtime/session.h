// One conversation's state on a loaded model: the KV cache and the tokens in it. Prompts go
// through the model in batches of LoadOptions::batch_size tokens (matrix-matrix kernels);
// generated tokens one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "runtime/model_loader.h"

namespace hearth::runtime {

class Session {
  public:
    explicit Session(const LoadedModel& model);

    // Appends tokens to the context and returns the logits after the last one (vocab floats,
    // valid until the next call). Throws hearth::Error, leaving the session as it was, when the
    // tokens would not fit the context. `progress(done, total)` is called after each batch.
    std::span<const float> evaluate(std::span<const int32_t> tokens,
                                    const std::function<void(int64_t, int64_t)>& progress = {});

    // The k largest of a row of logits, first first, and their tokens.
    struct TopLogits {
        std::span<const int32_t> tokens;
        std::span<const float> logits;
    };
    // As evaluate(), but only the k largest logits after the last token (ranked as
    // backend::rank_top_k ranks them), found where the model runs: what Sampler::sample_top needs,
    // without copying the whole row. 1 <= k <= backend::Backend::kMaxTopK.
    TopLogits evaluate_top(std::span<const int32_t> tokens, int k,
                           const std::function<void(int64_t, int64_t)>& progress = {});

    const std::vector<int32_t>& tokens() const { return tokens_; }
    // As asked for (the cache may hold a few positions more: it rounds up to whole blocks).
    int64_t context_length() const { return context_length_; }
    int64_t remaining() const { return context_length() - static_cast<int64_t>(tokens_.size()); }
    // Forgets the conversation (the cache is overwritten from position 0).
    void clear() { tokens_.clear(); }
    // Keeps the first n tokens (n <= tokens().size()).
    void truncate(int64_t n);

  private:
    // Runs the tokens in batches; the last batch through `last_batch(batch, start)`.
    void run_batches(std::span<const int32_t> tokens, const std::function<void(int64_t, int64_t)>& progress,
                     const std::function<void(std::span<const int32_t>, int64_t)>& last_batch);
    std::span<float> logits() const { return {logits_.get(), static_cast<size_t>(model_.hparams().vocab_size)}; }

    const LoadedModel& model_;
    int64_t context_length_;
    std::unique_ptr<backend::KvCache> cache_;
    model::LlamaWorkspace workspace_;
    backend::HostFloats logits_;
    std::vector<int32_t> tokens_;
    std::vector<int32_t> top_tokens_;
    std::vector<float> top_logits_;
};

}  // namespace hearth::runtime
