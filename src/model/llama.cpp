#include "model/llama.h"

#include <algorithm>
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
        for (const Weight* w : {&l.attn_norm, &l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_norm,
                                &l.ffn_gate, &l.ffn_up, &l.ffn_down})
            weights.push_back(w);
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

Llama::Llama(const gguf::File& file, backend::Backend& backend)
    : file_(file), backend_(backend), hparams_(read_hparams(file)),
      weights_(read_llama_weights(file, hparams_, backend)),
      rope_(rope_params(file, hparams_, weights_.rope_freq_factors)) {
    // A weight the backend copied is not read from the file again (but for embedding rows, which
    // fault back in): its pages go as soon as it is copied, so resident memory counts it once,
    // at the peak too.
    for (const Weight* weight : weights_.all()) {
        for (const Weight* copied : backend_.load_weights({&weight, 1}))
            file_.drop_resident_pages({copied->data, static_cast<size_t>(copied->rows) * copied->row_bytes});
    }
}

backend::KvCacheShape Llama::kv_cache_shape(int64_t capacity, quant::Type type) const {
    return {hparams_.layer_count, hparams_.head_count_kv, hparams_.head_dim(), capacity, type};
}

LlamaWorkspace Llama::make_workspace(int64_t max_tokens, int64_t logit_rows) const {
    const WorkspaceWidths widths = workspace_widths(hparams_);
    LlamaWorkspace ws;
    ws.max_tokens = max_tokens;
    ws.hidden = backend_.allocate(max_tokens, widths.hidden);
    ws.normed = backend_.allocate(max_tokens, widths.normed);
    ws.q = backend_.allocate(max_tokens, widths.q);
    ws.k = backend_.allocate(max_tokens, widths.k);
    ws.v = backend_.allocate(max_tokens, widths.v);
    ws.attention = backend_.allocate(max_tokens, widths.attention);
    ws.gate = backend_.allocate(max_tokens, widths.gate);
    ws.up = backend_.allocate(max_tokens, widths.up);
    ws.logits = backend_.allocate(std::max<int64_t>(1, logit_rows), hparams_.vocab_size);
    ws.positions.resize(max_tokens);
    return ws;
}

void Llama::attention_block(LlamaWorkspace& ws, backend::KvCache& cache, int64_t layer_index, int64_t n) const {
    const LlamaLayer& layer = weights_.layers[layer_index];
    const std::span<const int32_t> positions(ws.positions.data(), n);
    const Activations hidden = ws.hidden.first(n), x = ws.normed.first(n);
    const Activations q = ws.q.first(n), k = ws.k.first(n), v = ws.v.first(n), out = ws.attention.first(n);
    backend_.rmsnorm(hidden, layer.attn_norm, static_cast<float>(hparams_.rms_norm_epsilon), x);
    backend_.matmul(layer.attn_q, x, q);
    backend_.matmul(layer.attn_k, x, k);
    backend_.matmul(layer.attn_v, x, v);
    backend_.rope(q, positions, rope_);
    backend_.rope(k, positions, rope_);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hparams_.head_dim()));
    backend_.attention(cache, layer_index, q, k, v, positions, scale, out);
    backend_.matmul(layer.attn_output, out, x);
    backend_.add(hidden, x);
}

void Llama::feed_forward_block(LlamaWorkspace& ws, int64_t layer_index, int64_t n) const {
    const LlamaLayer& layer = weights_.layers[layer_index];
    const Activations hidden = ws.hidden.first(n), x = ws.normed.first(n);
    const Activations gate = ws.gate.first(n), up = ws.up.first(n);
    backend_.rmsnorm(hidden, layer.ffn_norm, static_cast<float>(hparams_.rms_norm_epsilon), x);
    backend_.matmul(layer.ffn_gate, x, gate);
    backend_.matmul(layer.ffn_up, x, up);
    backend_.swiglu(gate, up);
    backend_.matmul(layer.ffn_down, gate, x);
    backend_.add(hidden, x);
}

void Llama::forward(LlamaWorkspace& ws, backend::KvCache& cache, std::span<const int32_t> tokens, int64_t start,
                    std::span<float> logits, bool all_logits) const {
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t vocab = hparams_.vocab_size;
    if (n == 0) fail("forward: no tokens");
    if (n > ws.max_tokens) fail("forward: {} tokens exceed the batch of {}", n, ws.max_tokens);
    if (start < 0 || start + n > cache.shape().capacity)
        fail("the context holds {} tokens; positions {} to {} do not fit", cache.shape().capacity, start, start + n - 1);
    const int64_t logit_rows = all_logits ? n : 1;
    if (logit_rows > ws.logits.rows) fail("forward: workspace holds logits for {} tokens, not {}", ws.logits.rows, n);
    if (static_cast<int64_t>(logits.size()) < logit_rows * vocab) fail("forward: logits buffer too small");
    for (int32_t token : tokens) {
        if (token < 0 || token >= vocab) fail("token id {} is outside the vocabulary [0, {})", token, vocab);
    }
    for (int64_t i = 0; i < n; ++i) ws.positions[i] = static_cast<int32_t>(start + i);

    backend_.begin_forward(cache, ws.hidden, n);
    backend_.embed(weights_.token_embd, tokens, ws.hidden.first(n));
    for (int64_t layer = 0; layer < hparams_.layer_count; ++layer) {
        attention_block(ws, cache, layer, n);
        feed_forward_block(ws, layer, n);
    }
    // Only the rows whose logits are wanted go through the (vocab-sized) output projection.
    const Activations last{ws.hidden.row(n - logit_rows), logit_rows, hparams_.embedding_length};
    const Activations x = ws.normed.first(logit_rows);
    backend_.rmsnorm(last, weights_.output_norm, static_cast<float>(hparams_.rms_norm_epsilon), x);
    backend_.matmul(weights_.output, x, ws.logits.first(logit_rows));
    backend_.read(ws.logits.first(logit_rows), logits.data());
    for (int64_t i = 0; i < logit_rows * vocab; ++i) {
        if (!std::isfinite(logits[i])) fail_on_non_finite_logits();
    }
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
    for (const Weight* w : weights_.all()) {
        if (w != &weights_.token_embd) bytes += backend_.matmul_bytes(*w);
    }
    if (hparams_.tied_output) bytes += backend_.matmul_bytes(weights_.token_embd);
    return bytes;
}

}  // namespace hearth::model
