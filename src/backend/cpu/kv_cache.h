// The CPU KV cache: for each layer, K and V rows of one kv head at one slot, stored as F16 or
// Q8_0 (one row of head_dim values). Slots are positions of sequences as KvBatch maps them. Memory is reserved for the full capacity but only
// committed as positions are written (anonymous mmap), so a 131072-token context costs what the
// conversation has used so far, not its maximum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace hearth::cpu {

class CpuKvCache final : public backend::KvCache {
  public:
    explicit CpuKvCache(const backend::KvCacheShape& shape);
    ~CpuKvCache() override;
    CpuKvCache(const CpuKvCache&) = delete;
    CpuKvCache& operator=(const CpuKvCache&) = delete;

    const backend::KvCacheShape& shape() const override { return shape_; }
    size_t row_bytes() const { return row_bytes_; }

    // The rows of one kv head from slot 0 on, contiguous.
    uint8_t* keys(int64_t layer, int64_t kv_head) const { return row(layer, 0, kv_head, 0); }
    uint8_t* values(int64_t layer, int64_t kv_head) const { return row(layer, 1, kv_head, 0); }

    // Writes the rows of k and v ([rows][kv_heads * head_dim] f32) at their slots. Throws
    // hearth::Error for a slot outside the cache.
    void store(int64_t layer, const float* k, const float* v, const backend::KvBatch& rows);

    // Slots [first, first + count) of one kv head's keys or values as f32 ([count][head_dim]).
    void read_rows(const uint8_t* rows, int64_t first, int64_t count, float* out) const;

  private:
    uint8_t* row(int64_t layer, int which, int64_t kv_head, int64_t position) const;

    backend::KvCacheShape shape_;
    size_t row_bytes_ = 0;
    size_t mapped_bytes_ = 0;
    uint8_t* memory_ = nullptr;
};

// The fast attention: stores k and v, then streams over the cache in blocks of positions with
// an online softmax (no score matrix: memory is O(block), whatever the context length).
void attention(ThreadPool& pool, CpuKvCache& cache, int64_t layer, const float* q, const float* k, const float* v,
               int64_t heads, const backend::KvBatch& rows, float scale, float* out);

// The same without flash attention, as llama.cpp computes it with -fa off: every score of a row
// first (keys and values read whole), one softmax over them, then the weighted sum of the values.
// For comparisons (hearth bench -fa off); memory grows with the context.
void attention_materialized(ThreadPool& pool, CpuKvCache& cache, int64_t layer, const float* q, const float* k,
                            const float* v, int64_t heads, const backend::KvBatch& rows, float scale, float* out);

}  // namespace hearth::cpu
