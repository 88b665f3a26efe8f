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
            model_.llama().forward(workspace_, *cache_, tokens.subspan(done, batch), static_cast<int64_t>(tokens_.size()),
                                   logits());
            tokens_.insert(tokens_.end(), tokens.begin() + done, tokens.begin() + done + batch);
            done += batch;
            if (progress) progress(done, count);
        }
    } catch (...) {
        tokens_.resize(kept);  // the cache past `kept` is overwritten by the next call
        throw;
    }
    return logits();
}

void Session::truncate(int64_t n) {
    if (n < 0 || n > static_cast<int64_t>(tokens_.size())) fail("cannot keep {} of {} tokens", n, tokens_.size());
    tokens_.resize(n);
}

}  // namespace hearth::runtime
