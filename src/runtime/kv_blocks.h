// The blocks of a shared KV cache, handed out to sequences: the bookkeeping behind
// backend::KvBatch's block tables. A sequence holds whole blocks of backend::kKvBlockSize
// positions, in the order its positions fill them; blocks return to the pool when it ends.
// Nothing here touches the cache's memory.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

namespace hearth::runtime {

class KvBlockPool {
  public:
    explicit KvBlockPool(int64_t blocks);

    // Gives `sequence` enough blocks for positions [0, length). Returns false, taking nothing, when
    // too few are free.
    bool grow(int sequence, int64_t length);
    // Returns the sequence's blocks to the pool.
    void release(int sequence);

    // The sequence's blocks in order (empty for one that holds none).
    std::span<const int32_t> blocks_of(int sequence) const;
    int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
    int64_t total_blocks() const { return total_; }

    // The block tables of `sequences`, in that order, as KvBatch wants them: one row each of
    // `stride` entries, the most blocks any of them holds (-1 past a shorter sequence's blocks).
    // Returns the stride.
    int64_t tables(std::span<const int> sequences, std::vector<int32_t>& out) const;

  private:
    int64_t total_;
    std::vector<int32_t> free_;  // taken from the back
    std::map<int, std::vector<int32_t>> held_;
};

}  // namespace hearth::runtime
