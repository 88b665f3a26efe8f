#include "runtime/session.h"

#include <algorithm>

#include "common/error.h"

namespace hearth::runtime {

Session::Session(const LoadedModel& model)
    : model_(model),
      context_length_(model.options().context_length),
      cache_(model.llama().create_kv_cache(context_length_, model.options().kv_type)),
      workspace_(model.llama().make_workspace(model.options().batch_size)),
      logits_(model.llama().backend().allocate_host(model.hparams().vocab_size)) {}

std::span<const float> Session::evaluate(std::span<const int32_t> tokens,
                                         const std::function<void(int64_t, int64_t)>& progress) {
    run_batches(tokens, progress, [&](std::span<const int32_t> batch, int64_t start) {
        model_.llama().forward(workspace_, *cache_, batch, start, logits());
    });
    return logits();
}

Session::TopLogits Session::evaluate_top(std::span<const int32_t> tokens, int k,
                                         const std::function<void(int64_t, int64_t)>& progress) {
    const auto size = static_cast<size_t>(std::max(k, 0));
    top_tokens_.resize(size);
    top_logits_.resize(size);
    run_batches(tokens, progress, [&](std::span<const int32_t> batch, int64_t start) {
        model_.llama().forward_top_k(workspace_, *cache_, batch, start, k, top_tokens_, top_logits_);
    });
    return {top_tokens_, top_logits_};
}

void Session::run_batches(std::span<const int32_t> tokens, const std::function<void(int64_t, int64_t)>& progress,
                          const std::function<void(std::span<const int32_t>, int64_t)>& last_batch) {
    const int64_t count = static_cast<int64_t>(tokens.size());
    if (count == 0) fail("nothing to evaluate: no tokens");
    if (count > remaining()) {
        fail("the prompt needs {} tokens but only {} of the context's {} are left{}", count, remaining(),
             context_length(), tokens_.empty() ? " (raise it with -c)" : " (start over with /clear or raise -c)");
    }
    const size_t kept = tokens_.size();
    try {
        for (int64_t done = 0; done < count;) {
            const int64_t batch = std::min(workspace_.max_tokens, count - done);
            const auto part = tokens.subspan(static_cast<size_t>(done), static_cast<size_t>(batch));
            const auto start = static_cast<int64_t>(tokens_.size());
            if (done + batch < count) {
                model_.llama().forward(workspace_, *cache_, part, start, logits());
            } else {
                last_batch(part, start);
            }
            tokens_.insert(tokens_.end(), part.begin(), part.end());
            done += batch;
            if (progress) progress(done, count);
        }
    } catch (...) {
        tokens_.resize(kept);  // the cache past `kept` is overwritten by the next call
        throw;
    }
}

void Session::truncate(int64_t n) {
    if (n < 0 || n > static_cast<int64_t>(tokens_.size())) fail("cannot keep {} of {} tokens", n, tokens_.size());
    tokens_.resize(n);
}

}  // namespace hearth::runtime
