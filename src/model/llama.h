// The Llama block (Llama 3.x; Llama 2 and Mistral-style files have the same graph): the weight
// table read from a GGUF file, and the forward pass written once over backend ops.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "gguf/gguf.h"
#include "model/hparams.h"

namespace hearth::model {

struct LlamaLayer {
    backend::Weight attn_norm, attn_q, attn_k, attn_v, attn_output;
    backend::Weight ffn_norm, ffn_gate, ffn_up, ffn_down;

    // Every weight of the layer, once each.
    std::array<const backend::Weight*, 9> all() const {
        return {&attn_norm, &attn_q, &attn_k, &attn_v, &attn_output, &ffn_norm, &ffn_gate, &ffn_up, &ffn_down};
    }
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

// One backend's activation buffers for batches of up to max_tokens tokens.
struct LlamaBuffers {
    backend::Activations hidden, normed, q, k, v, attention, gate, up;
};

// Buffers for one forward call of up to `max_tokens` tokens: a set on each backend the layers
// run on, the logits on the backend of the output layer.
struct LlamaWorkspace {
    int64_t max_tokens = 0;
    std::vector<LlamaBuffers> on;  // by backend slot (Llama::backends())
    backend::Activations logits;
    std::vector<int32_t> positions;
    std::vector<float> transfer;  // the hidden state on its way between backends
};

// The KV cache of a model whose layers run on two backends: a part on each, holding its layers.
class SplitKvCache final : public backend::KvCache {
  public:
    SplitKvCache(const backend::KvCacheShape& whole, std::vector<std::unique_ptr<backend::KvCache>> parts)
        : shape_(whole), parts_(std::move(parts)) {}
    const backend::KvCacheShape& shape() const override { return shape_; }
    backend::KvCache& part(int slot) const { return *parts_[slot]; }

  private:
    backend::KvCacheShape shape_;
    std::vector<std::unique_ptr<backend::KvCache>> parts_;
};

// Floats a LlamaWorkspace holds for batches of max_tokens tokens and logit_rows rows of logits,
// from the hyperparameters alone: memory estimates need it before any weight is read.
int64_t llama_workspace_floats(const Hparams& hparams, int64_t max_tokens, int64_t logit_rows = 1);

class Llama {
  public:
    // Every layer on `backend`; or, with `first_layers_backend`, layers [0, first_layers) (and the
    // embedding) on that one and the rest (and the output layer) on `backend`: llama.cpp's -ngl,
    // a GPU taking the first layers of a model too large for it. The hidden state crosses once a
    // pass, through host memory.
    Llama(const gguf::File& file, backend::Backend& backend, backend::Backend* first_layers_backend = nullptr,
          int64_t first_layers = 0);

    const Hparams& hparams() const { return hparams_; }
    const LlamaWeights& weights() const { return weights_; }
    // The backend of the output layer (and of every layer, unless split).
    backend::Backend& backend() const { return *backends_[kOutputSlot]; }
    // Slot 0: the output layer's backend; slot 1, when split: the first layers' backend.
    const std::vector<backend::Backend*>& backends() const { return backends_; }
    backend::Backend& layer_backend(int64_t layer) const { return *backends_[layer_slot_[layer]]; }

    // A cache for `capacity` positions (rounded up to whole blocks) of every layer, each layer's on
    // its backend.
    std::unique_ptr<backend::KvCache> create_kv_cache(int64_t capacity, quant::Type type) const;
    backend::KvCacheShape kv_cache_shape(int64_t capacity, quant::Type type) const;
    // Buffers for batches of up to max_tokens tokens, with logits for up to logit_rows of them.
    LlamaWorkspace make_workspace(int64_t max_tokens, int64_t logit_rows = 1) const;

    // Runs `tokens` at positions start, start+1, ... of the sequence held in `cache` (whose
    // earlier positions must already be filled) and writes logits: the last token's (vocab
    // floats) or, with all_logits, every token's (tokens.size() * vocab floats).
    // tokens.size() must not exceed workspace.max_tokens; ids must be < vocab (checked).
    void forward(LlamaWorkspace& workspace, backend::KvCache& cache, std::span<const int32_t> tokens,
                 int64_t start, std::span<float> logits, bool all_logits = false) const;
    // The same for a batch of rows from one or more sequences sharing `cache` (continuous
    // batching): row t is tokens[t] at position rows.positions[t] of its sequence, placed in the
    // cache by the sequence's block table (backend::KvBatch). Throws hearth::Error naming the row
    // whose position, sequence or block is outside the cache or its table.
    void forward(LlamaWorkspace& workspace, backend::KvCache& cache, std::span<const int32_t> tokens,
                 const backend::KvBatch& rows, std::span<float> logits, bool all_logits = false) const;
    // The same, but instead of logits the greedy choice of every row (the column of its largest
    // logit) into next[row], found on the backend: batched decoding reads tokens, not 0.5 MB of
    // logits per sequence.
    void forward_greedy(LlamaWorkspace& workspace, backend::KvCache& cache, std::span<const int32_t> tokens,
                        const backend::KvBatch& rows, std::span<int32_t> next) const;
    // Instead of logits, the k largest logits of the last token (tokens at positions start, ...),
    // first first, and their tokens, ranked as backend::rank_top_k ranks them, found on the
    // backend: what a sampler with a top-k filter needs (Sampler::sample_top), without copying the
    // whole row. 1 <= k <= backend::Backend::kMaxTopK.
    void forward_top_k(LlamaWorkspace& workspace, backend::KvCache& cache, std::span<const int32_t> tokens,
                       int64_t start, int k, std::span<int32_t> ids, std::span<float> logits) const;

    // Bytes of weights one decoded token reads (the embedding table contributes one row).
    uint64_t weight_bytes_read_per_token() const;

  private:
    static constexpr int kOutputSlot = 0;

    // positions start, start + 1, ... for the n tokens of one sequence, in the workspace.
    backend::KvBatch single_sequence_rows(LlamaWorkspace& workspace, backend::KvCache& cache, int64_t start,
                                          int64_t n) const;

    // The pass up to the logits of its last `logit_rows` rows, left on the output backend.
    backend::Activations compute_logits(LlamaWorkspace& workspace, backend::KvCache& cache,
                                        std::span<const int32_t> tokens, const backend::KvBatch& rows,
                                        int64_t logit_rows) const;

    void attention_block(backend::Backend& backend, const LlamaBuffers& b, const backend::KvBatch& rows,
                         backend::KvCache& cache, int64_t layer_index, int64_t cache_layer, int64_t n) const;
    void feed_forward_block(backend::Backend& backend, const LlamaBuffers& b, int64_t layer_index, int64_t n) const;
    // The part of `cache` that holds a slot's layers.
    backend::KvCache& cache_of(backend::KvCache& cache, int slot) const;
    // Moves rows [0, n) of the hidden state from one slot's buffers to another's.
    void move_hidden(LlamaWorkspace& ws, int from, int to, int64_t n) const;
    // Names the weight that holds NaN or infinity, or says the activations overflowed.
    [[noreturn]] void fail_on_non_finite_logits() const;

    const gguf::File& file_;
    std::vector<backend::Backend*> backends_;
    std::vector<int> layer_slot_;          // the slot each layer runs on
    std::vector<int64_t> layer_in_cache_;  // its index among its slot's layers
    int input_slot_ = kOutputSlot;          // the slot that embeds the tokens (layer 0's)
    Hparams hparams_;
    LlamaWeights weights_;
    backend::RopeParams rope_;
};

}  // namespace hearth::model
