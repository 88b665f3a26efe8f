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

#include "backend/top_k.h"
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

// Positions of the KV cache are grouped in blocks of kKvBlockSize: the cache is a pool of blocks,
// and a sequence owns a list of them (its block table, see KvBatch), so that many sequences of
// different lengths share one cache without each reserving the whole context.
// 64: small enough that a short sequence wastes little, and a multiple of the key blocks the
// attention kernels stream (a block of keys never straddles two cache blocks).
constexpr int64_t kKvBlockSize = 64;

struct KvCacheShape {
    int64_t layers = 0;
    int64_t kv_heads = 0;
    int64_t head_dim = 0;
    int64_t capacity = 0;  // positions, a multiple of kKvBlockSize
    quant::Type type = quant::Type::F16;  // F16 or Q8_0

    int64_t blocks() const { return capacity / kKvBlockSize; }
    // Bytes the cache holds when full.
    size_t bytes() const {
        const size_t row = quant::row_bytes(type, head_dim).value_or(0);
        return 2 * static_cast<size_t>(layers * kv_heads * capacity) * row;
    }
};

// Capacity rounded up to whole blocks.
inline int64_t kv_capacity_for(int64_t positions) {
    return (positions + kKvBlockSize - 1) / kKvBlockSize * kKvBlockSize;
}

// Keys and values of one or more sequences, for every layer, in kKvBlockSize-position blocks.
class KvCache {
  public:
    virtual ~KvCache() = default;
    virtual const KvCacheShape& shape() const = 0;
};

// Where the rows of a forward pass belong: row t is position positions[t] of sequence
// sequence_of[t]. Position p of sequence s lives in slot p % kKvBlockSize of cache block
// tables[s * table_stride + p / kKvBlockSize]. Rows of one sequence are consecutive.
// With no tables, every row is of the one sequence that owns the whole cache in order (block i
// holds positions [64 i, 64 i + 64)): single-sequence use, as `hearth run` does.
struct KvBatch {
    std::span<const int32_t> positions;
    std::span<const int32_t> sequence_of;  // one per row; empty with no tables
    std::span<const int32_t> tables;       // sequences x table_stride block ids
    int64_t table_stride = 0;

    // Rows of the one sequence that owns the cache in order.
    static KvBatch single_sequence(std::span<const int32_t> positions) { return {positions, {}, {}, 0}; }

    bool paged() const { return !tables.empty(); }
    int64_t rows() const { return static_cast<int64_t>(positions.size()); }
    // The first n rows.
    KvBatch first(int64_t n) const {
        return {positions.first(n), paged() ? sequence_of.first(n) : sequence_of, tables, table_stride};
    }
    // The cache slot (block * kKvBlockSize + offset) of position p of row t's sequence.
    int64_t slot(int64_t t, int64_t p) const {
        if (!paged()) return p;
        return static_cast<int64_t>(tables[sequence_of[t] * table_stride + p / kKvBlockSize]) * kKvBlockSize +
               p % kKvBlockSize;
    }
    // Runs of rows of one sequence: calls f(first_row, count) for each, in order.
    template <typename F>
    void for_each_sequence(F&& f) const {
        const int64_t n = rows();
        for (int64_t first = 0; first < n;) {
            int64_t last = paged() ? first + 1 : n;
            while (last < n && sequence_of[last] == sequence_of[first]) ++last;
            f(first, last - first);
            first = last;
        }
    }
};

// Host memory that results are read into (logits), freed with its owner.
using HostFloats = std::unique_ptr<float[], void (*)(float*)>;

class Backend {
  public:
    virtual ~Backend() = default;
    virtual std::string_view name() const = 0;

    // Memory for activations, valid until the backend is destroyed.
    virtual Activations allocate(int64_t rows, int64_t cols) = 0;
    // Host memory for `count` floats that read() fills at full speed (page-locked, for a GPU:
    // a pageable copy of a 64-stream pass's logits, 33 MB, would take longer than the pass).
    virtual HostFloats allocate_host(int64_t count) {
        return {new float[static_cast<size_t>(count)], [](float* p) { delete[] p; }};
    }
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

    // Called by the model before the ops of one forward pass of `rows` over `cache`, whose first op
    // writes `hidden`; the pass ends with read(). A backend may record the ops of a pass once and
    // replay the recording for later passes of the same shape (the CUDA backend does, for
    // single-token decoding of one sequence), so between this call and read() the ops must come in
    // the same order with the same buffers for the same shape.
    virtual void begin_forward(const KvCache& /*cache*/, Activations /*hidden*/, const KvBatch& /*rows*/) {}

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
    // Stores k and v (row t at position rows.positions[t] of its sequence) into `layer` of the
    // cache, then causal grouped-query attention: query head h of row t attends to kv head
    // h / (heads / kv_heads) at positions [0, positions[t]] of its sequence, with scores scaled by
    // `scale`.
    virtual void attention(KvCache& cache, int64_t layer, Activations q, Activations k, Activations v,
                           const KvBatch& rows, float scale, Activations out) = 0;
    // RoPE on q and k, then attention as above: a backend may rotate k while it stores it (the
    // CUDA backend rotates q and k and stores k and v in one kernel).
    virtual void rope_attention(KvCache& cache, int64_t layer, Activations q, Activations k, Activations v,
                                const KvBatch& rows, const RopeParams& rope, float scale, Activations out) {
        this->rope(q, rows.positions, rope);
        this->rope(k, rows.positions, rope);
        attention(cache, layer, q, k, v, rows, scale, out);
    }
    // gate = silu(gate) * up, elementwise.
    virtual void swiglu(Activations gate, Activations up) = 0;
    // x += y, elementwise.
    virtual void add(Activations x, Activations y) = 0;
    // Copies activations to host memory (rows * cols floats), and back.
    virtual void read(Activations x, float* host) = 0;
    // For each row of x, the column of its largest value (the first of equal ones) and that value,
    // into host memory: greedy sampling without copying whole rows of logits (64 rows of Llama 3's
    // are 33 MB). A row holding NaN gives NaN as its value. Like read(), it ends a pass.
    virtual void argmax(Activations x, int32_t* host_columns, float* host_values) {
        std::vector<float> rows(static_cast<size_t>(x.rows * x.cols));
        read(x, rows.data());
        for (int64_t r = 0; r < x.rows; ++r) {
            const float* row = rows.data() + r * x.cols;
            int64_t best = 0;
            bool nan = false;
            for (int64_t c = 0; c < x.cols; ++c) {
                nan = nan || std::isnan(row[c]);
                if (row[c] > row[best]) best = c;
            }
            host_columns[r] = static_cast<int32_t>(best);
            host_values[r] = nan ? std::nanf("") : row[best];
        }
    }
    // For each row of x, its k largest values, first first, and their columns, into host memory
    // (k a row): ranked as rank_top_k ranks them (backend/top_k.h: NaN first, equal values by the
    // lower column). What a sampler with a top-k filter needs, without whole rows of logits.
    // 1 <= k <= min(cols, kMaxTopK). Like read(), it ends a pass.
    static constexpr int kMaxTopK = 1024;
    virtual void top_k(Activations x, int k, int32_t* host_columns, float* host_values) {
        std::vector<float> rows(static_cast<size_t>(x.rows * x.cols));
        read(x, rows.data());
        for (int64_t r = 0; r < x.rows; ++r)
            rank_top_k(rows.data() + r * x.cols, x.cols, k, host_columns + r * k, host_values + r * k);
    }
    virtual void write(Activations x, const float* host) = 0;

    // Read bandwidth of the memory the weights live in, bytes per second, measured now: the
    // ceiling decoding is held against.
    virtual double measure_read_bandwidth() = 0;

    // Flash attention (streaming, the default) or not (every score of a row first, as llama.cpp
    // with -fa off): for comparisons. False when the backend has no such path.
    virtual bool use_flash_attention(bool on) { return on; }
};

}  // namespace hearth::backend
