// The CPU backend's ops other than matmul, each twice: a plain reference in double precision
// (the documentation of the op, and what tests hold the fast one against) and the fast one
// the backend runs, in f32, split across the thread pool. Activations are row-major, one row
// per token.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace hearth::cpu {

namespace reference {

// out[t] = x[t] / sqrt(mean(x[t]^2) + epsilon) * weight
void rmsnorm(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon, float* out);
// In place, every head of every row (see backend::RopeParams).
void rope(float* x, int64_t rows, int64_t cols, std::span<const int32_t> positions, const backend::RopeParams& rope);
// Causal grouped-query attention against full-precision keys and values:
// k, v: [key_count][kv_heads * head_dim] at positions 0..key_count-1; q: [rows][heads * head_dim]
// at positions[t]; a query attends to keys at positions <= its own.
void attention(const float* q, int64_t rows, int64_t heads, const float* k, const float* v, int64_t key_count,
               int64_t kv_heads, int64_t head_dim, std::span<const int32_t> positions, float scale, float* out);
// gate = silu(gate) * up
void swiglu(float* gate, const float* up, int64_t count);

}  // namespace reference

void rmsnorm(ThreadPool& pool, const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon,
             float* out);
void rope(ThreadPool& pool, float* x, int64_t rows, int64_t cols, std::span<const int32_t> positions,
          const backend::RopeParams& rope);
// rope() in two steps, so that the angles of a batch are computed once and shared by the q and k
// of every layer: cos and sin of each row's rotary angles ([rows][pairs] each), then the rotation.
struct RopeTable {
    int64_t pairs = 0;
    std::vector<float> cosines, sines;
};
void compute_rope_table(ThreadPool& pool, std::span<const int32_t> positions, const backend::RopeParams& rope,
                        RopeTable& table);
void apply_rope(ThreadPool& pool, float* x, int64_t rows, int64_t cols, const RopeTable& table,
                const backend::RopeParams& rope);
void swiglu(ThreadPool& pool, float* gate, const float* up, int64_t count);
void add(ThreadPool& pool, float* x, const float* y, int64_t count);

}  // namespace hearth::cpu
