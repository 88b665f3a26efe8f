// The Llama block (Llama 3.x; Llama 2 and Mistral-style files have the same graph): the weight
// table read from a GGUF file, and the forward pass written once over backend ops.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "gguf/gguf.h"
#include "model/hparams.h"

namespace hearth::model {

struct LlamaLayer {
    backend::Weight attn_norm, attn_q, attn_k, attn_v, attn_output;
    backend::Weight ffn_norm, ffn_gate, ffn_up, ffn_down;
};

struct LlamaWeights {
    backend::Weight token_embd;
    std::vector<LlamaLayer> layers;
    backend::Weight output_norm;
    backend::Weight output;  // token_embd again when the model ties them
    std::vector<float> rope_freq_factors;  // empty unless the file has rope_freqs.weight

    // Every weight tensor the forward pass reads, once each.
    std::vector<const backend::Weight*> all() const;
};

// Reads the weight table. Throws hearth::Error naming the file and tensor for a missing tensor,
// a shape that disagrees with the metadata, a type `backend` cannot multiply, and non-finite
// values in the small tensors (norms, rope factors) that are checked in full at load.
LlamaWeights read_llama_weights(const gguf::File& file, const Hparams& hparams, const backend::Backend& backend);

// Buffers for one forward call of up to `max_tokens` tokens.
struct LlamaWorkspace {
    int64_t max_tokens = 0;
    backend::Activations hidden, normed, q, k, v, attention, gate, up, logits;
    std::vector<int32_t> positions;
};

// Floats a LlamaWorkspace holds for batches of max_tokens tokens and logit_rows rows of logits,
// from the hyperparameters alone: memory estimates need it before any weight is read.
int64_t llama_workspace_floats(const Hparams& hparams, int64_t max_tokens, int64_t logit_rows = 1);

class Llama {
  public:
    Llama(const gguf::File& file, backend::Backend& backend);

    const Hparams& hparams() const { return hparams_; }
    const LlamaWeights& weights() const { return weights_; }
    backend::Backend& backend() const { return backend_; }

    backend::KvCacheShape kv_cache_shape(int64_t capacity, quant::Type type) const;
    // Buffers for batches of up to max_tokens tokens, with logits for up to logit_rows of them.
    LlamaWorkspace make_workspace(int64_t max_tokens, int64_t logit_rows = 1) const;

    // Runs `tokens` at positions start, start+1, ... of the sequence held in `cache` (whose
    // earlier positions must already be filled) and writes logits: the last token's (vocab
    // floats) or, with all_logits, every token's (tokens.size() * vocab floats).
    // tokens.size() must not exceed workspace.max_tokens; ids must be < vocab (checked).
    void forward(LlamaWorkspace& workspace, backend::KvCache& cache, std::span<const int32_t> tokens,
                 int64_t start, std::span<float> logits, bool all_logits = false) const;

    // Bytes of weights one decoded token reads (the embedding table contributes one row).
    uint64_t weight_bytes_read_per_token() const;

  private:
    void attention_block(LlamaWorkspace& ws, backend::KvCache& cache, int64_t layer_index, int64_t n) const;
    void feed_forward_block(LlamaWorkspace& ws, int64_t layer_index, int64_t n) const;
    // Names the weight that holds NaN or infinity, or says the activations overflowed.
    [[noreturn]] void fail_on_non_finite_logits() const;

    const gguf::File& file_;
    backend::Backend& backend_;
    Hparams hparams_;
    LlamaWeights weights_;
    backend::RopeParams rope_;
};

}  // namespace hearth::model
