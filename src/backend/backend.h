// The seam between the model and the hardware: the coarse ops a transformer block is written in.
// model/ calls them in order (the Llama block reads top to bottom in model/llama.cpp); each
// backend implements them its own way: the CPU one splits rows across a thread pool, the CUDA one
// fuses and captures them. Nothing here knows about Llama, requests or tokens' text.
//
// Every op works on a batch of tokens at once: rows of an Activations are tokens.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quant/types.h"

namespace hearth::backend {

// A weight tensor as it lies in the GGUF file (rows of `cols` values of `type`, each row
// `row_bytes` long). `data` points into the file's mmap; a backend may keep its own copy.
struct Weight {
    std::string name;
    quant::Type type = quant::Type::F32;
    const uint8_t* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;
    size_t row_bytes = 0;
};

// `rows` tokens of `cols` f32 values each, row-major, in the backend's memory.
struct Activations {
    float* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;

    // The first n rows (tokens) of the same memory.
    Activations first(int64_t n) const { return {data, n, cols}; }
    float* row(int64_t i) const { return data + i * cols; }
};

// Rotary position embedding as llama.cpp's "normal" mode computes it: in each head, adjacent
// pairs (2i, 2i+1) of the first rotary_dims values rotate by
// theta_i = freq_scale * position * freq_base^(-2i / rotary_dims) / freq_factors[i].
struct RopeParams {
    int64_t head_dim = 0;
    int64_t rotary_dims = 0;
    double freq_base = 10000.0;
    double freq_scale = 1.0;
    const float* freq_factors = nullptr;  // rotary_dims / 2 values (Llama 3's rope_freqs), or none

    // freq_base^(-2i / rotary_dims) / freq_factors[i], in double: at position 131071 an f32
    // angle would be off by ~0.01 rad. (The scalar reference writes the formula out on its own.)
    double inverse_frequency(int64_t pair) const {
        double f = std::pow(freq_base, -2.0 * static_cast<double>(pair) / static_cast<double>(rotary_dims));
        return freq_factors ? f / freq_factors[pair] : f;
    }
};

struct KvCacheShape {
    int64_t layers = 0;
    int64_t kv_heads = 0;
    int64_t head_dim = 0;
    int64_t capacity = 0;  // positions
    quant::Type type = quant::Type::F16;  // F16 or Q8_0

    // Bytes the cache holds when full.
    size_t bytes() const {
        const size_t row = quant::row_bytes(type, head_dim).value_or(0);
        return 2 * static_cast<size_t>(layers * kv_heads * capacity) * row;
    }
};

// Keys and values of one sequence, for every layer. Position p of the sequence lives in slot p.
class KvCache {
  public:
    virtual ~KvCache() = default;
    virtual const KvCacheShape& shape() const = 0;
};

class Backend {
  public:
    virtual ~Backend() = default;
    virtual std::string_view name() const = 0;

    // Memory for activations, valid until the backend is destroyed.
    virtual Activations allocate(int64_t rows, int64_t cols) = 0;
    virtual std::unique_ptr<KvCache> create_kv_cache(const KvCacheShape& shape) = 0;
    // Whether matmul and embed accept weights of this type.
    virtual bool supports(quant::Type weight_type) const = 0;
    // Called once with the model's weights before the first op. A backend may keep a copy of
    // some in a layout or memory of its own (the CPU backend repacks the types its fastest
    // kernels want in another layout); later ops still name weights by these Weight objects.
    // Returns the weights it copied: their matmuls no longer read the file (embed still does).
    virtual std::vector<const Weight*> load_weights(std::span<const Weight* const> /*weights*/) { return {}; }
    // Bytes a matmul with this weight reads: its copy's where load_weights made one (a repacked
    // layout may be larger than the file's), else the file's.
    virtual uint64_t matmul_bytes(const Weight& weight) const {
        return static_cast<uint64_t>(weight.rows) * weight.row_bytes;
    }

    // Called by the model before the ops of one forward pass of `tokens` tokens over `cache`,
    // whose first op writes `hidden`; the pass ends with read(). A backend may record the ops of a
    // pass once and replay the recording for later passes of the same shape (the CUDA backend does,
    // for single-token decoding), so between this call and read() the ops must come in the same
    // order with the same buffers for the same shape.
    virtual void begin_forward(const KvCache& /*cache*/, Activations /*hidden*/, int64_t /*tokens*/) {}

    // out row t = row tokens[t] of the embedding table, as f32.
    virtual void embed(const Weight& table, std::span<const int32_t> tokens, Activations out) = 0;
    // out = x / sqrt(mean(x^2) + epsilon) * weight, per row. `weight` is F32.
    virtual void rmsnorm(Activations x, const Weight& weight, float epsilon, Activations out) = 0;
    // out[t][r] = dot(weight row r, x row t).
    virtual void matmul(const Weight& weight, Activations x, Activations out) = 0;
    // Several products of one input (a layer's Q, K and V; its gate and up): out_i = weight_i x.
    // A backend may run them as one (the CUDA backend launches one kernel for them).
    struct Product {
        const Weight* weight;
        Activations out;
    };
    virtual void matmuls(std::span<const Product> products, Activations x) {
        for (const Product& p : products) matmul(*p.weight, x, p.out);
    }
    // out += weight x: a block's output projection and its residual connection. `scratch` (out's
    // shape) is the backend's to use for the product; the CUDA backend adds in the matmul itself.
    virtual void matmul_add(const Weight& weight, Activations x, Activations scratch, Activations out) {
        matmul(weight, x, scratch);
        add(out, scratch);
    }
    // Rotates every head of every row in place; row t is at positions[t].
    virtual void rope(Activations x, std::span<const int32_t> positions, const RopeParams& rope) = 0;
    // Stores k and v (rows at positions[t]) into `layer` of the cache, then causal grouped-query
    // attention: query head h of row t attends to kv head h / (heads / kv_heads) at cache
    // positions [0, positions[t]], with scores scaled by `scale`.
    virtual void attention(KvCache& cache, int64_t layer, Activations q, Activations k, Activations v,
                           std::span<const int32_t> positions, float scale, Activations out) = 0;
    // RoPE on q and k, then attention as above: a backend may rotate k while it stores it (the
    // CUDA backend rotates q and k and stores k and v in one kernel).
    virtual void rope_attention(KvCache& cache, int64_t layer, Activations q, Activations k, Activations v,
                                std::span<const int32_t> positions, const RopeParams& rope, float scale,
                                Activations out) {
        this->rope(q, positions, rope);
        this->rope(k, positions, rope);
        attention(cache, layer, q, k, v, positions, scale, out);
    }
    // gate = silu(gate) * up, elementwise.
    virtual void swiglu(Activations gate, Activations up) = 0;
    // x += y, elementwise.
    virtual void add(Activations x, Activations y) = 0;
    // Copies activations to host memory (rows * cols floats), and back.
    virtual void read(Activations x, float* host) = 0;
    virtual void write(Activations x, const float* host) = 0;

    // Read bandwidth of the memory the weights live in, bytes per second, measured now: the
    // ceiling decoding is held against.
    virtual double measure_read_bandwidth() = 0;

    // Flash attention (streaming, the default) or not (every score of a row first, as llama.cpp
    // with -fa off): for comparisons. False when the backend has no such path.
    virtual bool use_flash_attention(bool on) { return on; }
};

}  // namespace hearth::backend
