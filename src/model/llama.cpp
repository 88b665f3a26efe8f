#include "model/llama.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "common/error.h"
#include "quant/quant.h"

namespace hearth::model {
namespace {

using backend::Activations;
using backend::Weight;

const gguf::TensorInfo& require_tensor(const gguf::File& file, const std::string& name) {
    const gguf::TensorInfo* info = file.find_tensor(name);
    if (!info) fail("{}: tensor '{}' is missing", file.name(), name);
    return *info;
}

// A matrix of `rows` rows of `cols` values (GGUF shape [cols, rows]).
Weight read_matrix(const gguf::File& file, const std::string& name, int64_t cols, int64_t rows,
                   const backend::Backend& backend) {
    const gguf::TensorInfo& info = require_tensor(file, name);
    const bool shape_ok = info.shape.size() == 2 && info.shape[0] == cols && info.shape[1] == rows;
    if (!shape_ok) {
        std::string shape;
        for (int64_t d : info.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
        fail("{}: tensor '{}' has shape [{}], but the metadata implies [{}, {}]", file.name(), name, shape, cols, rows);
    }
    if (!backend.supports(info.type)) {
        fail("{}: tensor '{}' is {}, which the {} backend cannot compute with", file.name(), name,
             quant::type_name(info.type), backend.name());
    }
    const std::span<const uint8_t> data = file.tensor_data(info);
    return Weight{name, info.type, data.data(), rows, cols, data.size() / static_cast<size_t>(rows)};
}

// A vector of `length` F32 values, checked in full: norms are small and a NaN in one would
// otherwise surface only as NaN logits.
Weight read_f32_vector(const gguf::File& file, const std::string& name, int64_t length) {
    const gguf::TensorInfo& info = require_tensor(file, name);
    if (info.shape.size() != 1 || info.shape[0] != length)
        fail("{}: tensor '{}' should hold {} values", file.name(), name, length);
    if (info.type != quant::Type::F32)
        fail("{}: tensor '{}' is {}; norms and rope factors must be F32", file.name(), name, quant::type_name(info.type));
    const std::span<const uint8_t> data = file.tensor_data(info);
    const auto* values = reinterpret_cast<const float*>(data.data());
    for (int64_t i = 0; i < length; ++i) {
        if (!std::isfinite(values[i])) fail("{}: tensor '{}' holds {} at index {}", file.name(), name, values[i], i);
    }
    return Weight{name, info.type, data.data(), 1, length, data.size()};
}

backend::RopeParams rope_params(const gguf::File& file, const Hparams& h, const std::vector<float>& factors) {
    backend::RopeParams rope;
    rope.head_dim = h.head_dim();
    rope.rotary_dims = h.rope_dimension_count;
    rope.freq_base = h.rope_freq_base;
    const std::string& scaling = h.rope_scaling.type;
    if (scaling == "linear") {
        if (!(h.rope_scaling.factor > 0)) fail("{}: rope scaling factor must be positive", file.name());
        rope.freq_scale = 1.0 / h.rope_scaling.factor;
    } else if (scaling == "llama3") {
        rope.freq_factors = factors.data();
    } else if (scaling != "none" && !scaling.empty()) {
        fail("{}: RoPE scaling '{}' is not supported yet (hearth runs none, linear and llama3)", file.name(), scaling);
    }
    if (rope.rotary_dims > rope.head_dim || rope.rotary_dims % 2 != 0)
        fail("{}: rope dimension count {} does not fit head size {}", file.name(), rope.rotary_dims, rope.head_dim);
    return rope;
}

// The width (floats per token) of each activation buffer of a workspace.
struct WorkspaceWidths {
    int64_t hidden, normed, q, k, v, attention, gate, up;

    int64_t sum() const { return hidden + normed + q + k + v + attention + gate + up; }
};

WorkspaceWidths workspace_widths(const Hparams& h) {
    const int64_t dim = h.embedding_length, kv_dim = h.head_count_kv * h.head_dim(), ffn = h.feed_forward_length;
    return {dim, dim, dim, kv_dim, kv_dim, dim, ffn, ffn};
}

}  // namespace

int64_t llama_workspace_floats(const Hparams& hparams, int64_t max_tokens, int64_t logit_rows) {
    return max_tokens * workspace_widths(hparams).sum() + std::max<int64_t>(1, logit_rows) * hparams.vocab_size;
}

std::vector<const Weight*> LlamaWeights::all() const {
    std::vector<const Weight*> weights{&token_embd};
    for (const LlamaLayer& l : layers) {
        for (const Weight* w : l.all()) weights.push_back(w);
    }
    weights.push_back(&output_norm);
    if (output.data != token_embd.data) weights.push_back(&output);
    return weights;
}

LlamaWeights read_llama_weights(const gguf::File& file, const Hparams& h, const backend::Backend& backend) {
    const int64_t dim = h.embedding_length;
    const int64_t kv_dim = h.head_count_kv * h.head_dim();
    LlamaWeights w;
    w.token_embd = read_matrix(file, "token_embd.weight", dim, h.vocab_size, backend);
    w.layers.resize(h.layer_count);
    for (int64_t i = 0; i < h.layer_count; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        LlamaLayer& l = w.layers[i];
        l.attn_norm = read_f32_vector(file, p + "attn_norm.weight", dim);
        l.attn_q = read_matrix(file, p + "attn_q.weight", dim, dim, backend);
        l.attn_k = read_matrix(file, p + "attn_k.weight", dim, kv_dim, backend);
        l.attn_v = read_matrix(file, p + "attn_v.weight", dim, kv_dim, backend);
        l.attn_output = read_matrix(file, p + "attn_output.weight", dim, dim, backend);
        l.ffn_norm = read_f32_vector(file, p + "ffn_norm.weight", dim);
        l.ffn_gate = read_matrix(file, p + "ffn_gate.weight", dim, h.feed_forward_length, backend);
        l.ffn_up = read_matrix(file, p + "ffn_up.weight", dim, h.feed_forward_length, backend);
        l.ffn_down = read_matrix(file, p + "ffn_down.weight", h.feed_forward_length, dim, backend);
    }
    w.output_norm = read_f32_vector(file, "output_norm.weight", dim);
    w.output = h.tied_output ? w.token_embd : read_matrix(file, "output.weight", dim, h.vocab_size, backend);
    if (h.rope_scaling.type == "llama3") {
        const Weight factors = read_f32_vector(file, "rope_freqs.weight", h.rope_dimension_count / 2);
        const auto* values = reinterpret_cast<const float*>(factors.data);
        w.rope_freq_factors.assign(values, values + factors.cols);
    }
    return w;
}

Llama::Llama(const gguf::File& file, backend::Backend& backend, backend::Backend* first_layers_backend,
             int64_t first_layers)
    : file_(file), backends_{&backend}, hparams_(read_hparams(file)),
      weights_(read_llama_weights(file, hparams_, backend)),
      rope_(rope_params(file, hparams_, weights_.rope_freq_factors)) {
    const int64_t layers = hparams_.layer_count;
    const bool split = first_layers_backend && first_layers > 0 && first_layers < layers;
    if (split) {
        backends_.push_back(first_layers_backend);
        input_slot_ = 1;
    }
    layer_slot_.resize(layers);
    layer_in_cache_.resize(layers);
    for (int64_t i = 0; i < layers; ++i) {
        layer_slot_[i] = split && i < first_layers ? 1 : kOutputSlot;
        layer_in_cache_[i] = split && i >= first_layers ? i - first_layers : i;
    }
    // Each weight goes to the backend that computes with it (a tied output matrix to both).
    // A weight a backend copied is not read from the file again (but for embedding rows, which
    // fault back in): its pages go as soon as it is copied, so resident memory counts it once,
    // at the peak too.
    const auto load = [&](const Weight& weight, int slot) {
        const Weight* w = &weight;
        for (const Weight* copied : backends_[slot]->load_weights({&w, 1}))
            file_.drop_resident_pages({copied->data, static_cast<size_t>(copied->rows) * copied->row_bytes});
    };
    load(weights_.token_embd, input_slot_);
    for (int64_t i = 0; i < layers; ++i)
        for (const Weight* w : weights_.layers[i].all()) load(*w, layer_slot_[i]);
    load(weights_.output_norm, kOutputSlot);
    if (weights_.output.data != weights_.token_embd.data || input_slot_ != kOutputSlot) load(weights_.output, kOutputSlot);
}

backend::KvCacheShape Llama::kv_cache_shape(int64_t capacity, quant::Type type) const {
    return {hparams_.layer_count, hparams_.head_count_kv, hparams_.head_dim(), backend::kv_capacity_for(capacity), type};
}

std::unique_ptr<backend::KvCache> Llama::create_kv_cache(int64_t capacity, quant::Type type) const {
    const backend::KvCacheShape whole = kv_cache_shape(capacity, type);
    if (backends_.size() == 1) return backend().create_kv_cache(whole);
    std::vector<std::unique_ptr<backend::KvCache>> parts;
    for (int slot = 0; slot < static_cast<int>(backends_.size()); ++slot) {
        backend::KvCacheShape shape = whole;
        shape.layers = std::count(layer_slot_.begin(), layer_slot_.end(), slot);
        parts.push_back(backends_[slot]->create_kv_cache(shape));
    }
    return std::make_unique<SplitKvCache>(whole, std::move(parts));
}

backend::KvCache& Llama::cache_of(backend::KvCache& cache, int slot) const {
    if (backends_.size() == 1) return cache;
    auto* split = dynamic_cast<SplitKvCache*>(&cache);
    if (!split) fail("forward: this model runs on two backends and needs the cache Llama::create_kv_cache makes");
    return split->part(slot);
}

LlamaWorkspace Llama::make_workspace(int64_t max_tokens, int64_t logit_rows) const {
    const WorkspaceWidths widths = workspace_widths(hparams_);
    LlamaWorkspace ws;
    ws.max_tokens = max_tokens;
    for (backend::Backend* b : backends_) {
        ws.on.push_back({b->allocate(max_tokens, widths.hidden), b->allocate(max_tokens, widths.normed),
                         b->allocate(max_tokens, widths.q), b->allocate(max_tokens, widths.k),
                         b->allocate(max_tokens, widths.v), b->allocate(max_tokens, widths.attention),
                         b->allocate(max_tokens, widths.gate), b->allocate(max_tokens, widths.up)});
    }
    ws.logits = backend().allocate(std::max<int64_t>(1, logit_rows), hparams_.vocab_size);
    ws.positions.resize(max_tokens);
    if (backends_.size() > 1) ws.transfer.resize(static_cast<size_t>(max_tokens * widths.hidden));
    return ws;
}

void Llama::move_hidden(LlamaWorkspace& ws, int from, int to, int64_t n) const {
    backends_[from]->read(ws.on[from].hidden.first(n), ws.transfer.data());
    backends_[to]->write(ws.on[to].hidden.first(n), ws.transfer.data());
}

void Llama::attention_block(backend::Backend& backend, const LlamaBuffers& b, const backend::KvBatch& rows,
                            backend::KvCache& cache, int64_t layer_index, int64_t cache_layer, int64_t n) const {
    const LlamaLayer& layer = weights_.layers[layer_index];
    const Activations hidden = b.hidden.first(n), x = b.normed.first(n);
    const Activations q = b.q.first(n), k = b.k.first(n), v = b.v.first(n), out = b.attention.first(n);
    backend.rmsnorm(hidden, layer.attn_norm, static_cast<float>(hparams_.rms_norm_epsilon), x);
    const backend::Backend::Product qkv[] = {{&layer.attn_q, q}, {&layer.attn_k, k}, {&layer.attn_v, v}};
    backend.matmuls(qkv, x);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hparams_.head_dim()));
    backend.rope_attention(cache, cache_layer, q, k, v, rows, rope_, scale, out);
    backend.matmul_add(layer.attn_output, out, x, hidden);
}

void Llama::feed_forward_block(backend::Backend& backend, const LlamaBuffers& b, int64_t layer_index, int64_t n) const {
    const LlamaLayer& layer = weights_.layers[layer_index];
    const Activations hidden = b.hidden.first(n), x = b.normed.first(n);
    const Activations gate = b.gate.first(n), up = b.up.first(n);
    backend.rmsnorm(hidden, layer.ffn_norm, static_cast<float>(hparams_.rms_norm_epsilon), x);
    const backend::Backend::Product gate_up[] = {{&layer.ffn_gate, gate}, {&layer.ffn_up, up}};
    backend.matmuls(gate_up, x);
    backend.swiglu(gate, up);
    backend.matmul_add(layer.ffn_down, gate, x, hidden);
}

backend::KvBatch Llama::single_sequence_rows(LlamaWorkspace& ws, backend::KvCache& cache, int64_t start,
                                             int64_t n) const {
    if (n == 0) fail("forward: no tokens");
    if (n > ws.max_tokens) fail("forward: {} tokens exceed the batch of {}", n, ws.max_tokens);
    if (start < 0 || start + n > cache.shape().capacity)
        fail("the context holds {} tokens; positions {} to {} do not fit", cache.shape().capacity, start, start + n - 1);
    for (int64_t i = 0; i < n; ++i) ws.positions[i] = static_cast<int32_t>(start + i);
    return backend::KvBatch::single_sequence({ws.positions.data(), static_cast<size_t>(n)});
}

void Llama::forward(LlamaWorkspace& ws, backend::KvCache& cache, std::span<const int32_t> tokens, int64_t start,
                    std::span<float> logits, bool all_logits) const {
    const int64_t n = static_cast<int64_t>(tokens.size());
    forward(ws, cache, tokens, single_sequence_rows(ws, cache, start, n), logits, all_logits);
}

namespace {

// Written so that it vectorizes (no early exit): 64 rows of Llama 3's logits are 8 M floats.
bool all_finite(std::span<const float> values) {
    uint32_t non_finite = 0;
    for (const float v : values) non_finite |= (std::bit_cast<uint32_t>(v) & 0x7f800000u) == 0x7f800000u;
    return non_finite == 0;
}

// Every row's position and the blocks its attention reads lie inside the cache.
void check_kv_batch(const backend::KvBatch& rows, const backend::KvCacheShape& shape) {
    const int64_t sequences = rows.table_stride > 0 ? static_cast<int64_t>(rows.tables.size()) / rows.table_stride : 0;
    if (rows.paged() && static_cast<int64_t>(rows.sequence_of.size()) != rows.rows())
        fail("forward: {} rows but {} sequence ids", rows.rows(), rows.sequence_of.size());
    for (int64_t t = 0; t < rows.rows(); ++t) {
        const int64_t position = rows.positions[t];
        if (position < 0) fail("forward: row {} has position {}", t, position);
        if (!rows.paged()) {
            if (position >= shape.capacity)
                fail("the context holds {} tokens; position {} does not fit", shape.capacity, position);
            continue;
        }
        const int64_t sequence = rows.sequence_of[t];
        if (sequence < 0 || sequence >= sequences)
            fail("forward: row {} is of sequence {}, but the block tables hold {}", t, sequence, sequences);
        const int64_t blocks = position / backend::kKvBlockSize + 1;
        if (blocks > rows.table_stride)
            fail("forward: row {} is at position {}, past the {} positions of its block table", t, position,
                 rows.table_stride * backend::kKvBlockSize);
        for (int64_t b = 0; b < blocks; ++b) {
            const int32_t block = rows.tables[sequence * rows.table_stride + b];
            if (block < 0 || block >= shape.blocks())
                fail("forward: sequence {} names cache block {}, outside the cache's {}", sequence, block, shape.blocks());
        }
    }
}

}  // namespace

void Llama::forward(LlamaWorkspace& ws, backend::KvCache& cache, std::span<const int32_t> tokens,
                    const backend::KvBatch& rows, std::span<float> logits, bool all_logits) const {
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t logit_rows = all_logits ? n : 1;
    if (static_cast<int64_t>(logits.size()) < logit_rows * hparams_.vocab_size) fail("forward: logits buffer too small");
    const Activations out = compute_logits(ws, cache, tokens, rows, logit_rows);
    backend().read(out, logits.data());
    if (!all_finite(logits.first(static_cast<size_t>(logit_rows * hparams_.vocab_size)))) fail_on_non_finite_logits();
}

void Llama::forward_greedy(LlamaWorkspace& ws, backend::KvCache& cache, std::span<const int32_t> tokens,
                           const backend::KvBatch& rows, std::span<int32_t> next) const {
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (static_cast<int64_t>(next.size()) < n) fail("forward: room for {} tokens, not {}", next.size(), n);
    const Activations out = compute_logits(ws, cache, tokens, rows, n);
    std::vector<float> largest(static_cast<size_t>(n));
    backend().argmax(out, next.data(), largest.data());
    if (!all_finite(largest)) fail_on_non_finite_logits();
}

void Llama::forward_top_k(LlamaWorkspace& ws, backend::KvCache& cache, std::span<const int32_t> tokens, int64_t start,
                          int k, std::span<int32_t> ids, std::span<float> logits) const {
    const int64_t limit = std::min<int64_t>(hparams_.vocab_size, backend::Backend::kMaxTopK);
    if (k < 1 || k > limit) fail("forward: the top {} logits asked for; 1 to {} can be", k, limit);
    const auto needed = static_cast<size_t>(k);
    if (ids.size() < needed || logits.size() < needed)
        fail("forward: room for {} and {} of the top logits, not {}", ids.size(), logits.size(), needed);
    const int64_t n = static_cast<int64_t>(tokens.size());
    const Activations out = compute_logits(ws, cache, tokens, single_sequence_rows(ws, cache, start, n), 1);
    backend().top_k(out, k, ids.data(), logits.data());
    // A NaN or +inf ranks first, so checking the top finds them.
    if (!all_finite(logits.first(needed))) fail_on_non_finite_logits();
}

Activations Llama::compute_logits(LlamaWorkspace& ws, backend::KvCache& cache, std::span<const int32_t> tokens,
                                  const backend::KvBatch& rows, int64_t logit_rows) const {
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t vocab = hparams_.vocab_size;
    if (n == 0) fail("forward: no tokens");
    if (n > ws.max_tokens) fail("forward: {} tokens exceed the batch of {}", n, ws.max_tokens);
    if (rows.rows() != n) fail("forward: {} tokens but {} positions", n, rows.rows());
    check_kv_batch(rows, cache.shape());
    if (logit_rows > ws.logits.rows) fail("forward: workspace holds logits for {} tokens, not {}", ws.logits.rows, n);
    for (int32_t token : tokens) {
        if (token < 0 || token >= vocab) fail("token id {} is outside the vocabulary [0, {})", token, vocab);
    }

    // Each backend's part of the pass opens with begin_forward and ends with a read (the hidden
    // state leaving it, or the logits).
    int slot = input_slot_;
    backends_[slot]->begin_forward(cache_of(cache, slot), ws.on[slot].hidden, rows);
    backends_[slot]->embed(weights_.token_embd, tokens, ws.on[slot].hidden.first(n));
    for (int64_t layer = 0; layer < hparams_.layer_count; ++layer) {
        if (layer_slot_[layer] != slot) {
            const int next = layer_slot_[layer];
            backends_[next]->begin_forward(cache_of(cache, next), ws.on[next].hidden, rows);
            move_hidden(ws, slot, next, n);
            slot = next;
        }
        backend::Backend& b = *backends_[slot];
        attention_block(b, ws.on[slot], rows, cache_of(cache, slot), layer, layer_in_cache_[layer], n);
        feed_forward_block(b, ws.on[slot], layer, n);
    }
    if (slot != kOutputSlot) {
        backends_[kOutputSlot]->begin_forward(cache_of(cache, kOutputSlot), ws.on[kOutputSlot].hidden, rows);
        move_hidden(ws, slot, kOutputSlot, n);
    }
    // Only the rows whose logits are wanted go through the (vocab-sized) output projection.
    const LlamaBuffers& out = ws.on[kOutputSlot];
    const Activations last{out.hidden.row(n - logit_rows), logit_rows, hparams_.embedding_length};
    const Activations x = out.normed.first(logit_rows);
    backend().rmsnorm(last, weights_.output_norm, static_cast<float>(hparams_.rms_norm_epsilon), x);
    backend().matmul(weights_.output, x, ws.logits.first(logit_rows));
    return ws.logits.first(logit_rows);
}

void Llama::fail_on_non_finite_logits() const {
    // Finding the culprit means reading every weight, so it is done only once something is wrong.
    std::vector<float> row;
    for (const Weight* w : weights_.all()) {
        row.resize(w->cols);
        for (int64_t r = 0; r < w->rows; ++r) {
            quant::dequantize_row(w->type, w->data + r * w->row_bytes, row.data(), w->cols);
            for (int64_t i = 0; i < w->cols; ++i) {
                if (!std::isfinite(row[i]))
                    fail("{}: tensor '{}' holds {} (row {}, column {}); the model file is damaged", file_.name(),
                         w->name, row[i], r, i);
            }
        }
    }
    fail("{}: the logits are not finite, though every weight is: the activations overflowed", file_.name());
}

uint64_t Llama::weight_bytes_read_per_token() const {
    // Every weight once as the backend holds it (the output projection is the embedding table
    // when tied), and one row of the embedding table gathered from the file.
    uint64_t bytes = weights_.token_embd.row_bytes;
    for (int64_t i = 0; i < hparams_.layer_count; ++i)
        for (const Weight* w : weights_.layers[i].all()) bytes += layer_backend(i).matmul_bytes(*w);
    return bytes + backend().matmul_bytes(weights_.output_norm) + backend().matmul_bytes(weights_.output);
}

}  // namespace hearth::model
