// Byte-level BPE of one pre-tokenized piece, as Hugging Face tokenizers' BPE model does it:
// start from one symbol per byte, then repeatedly merge the adjacent pair with the lowest merge
// rank (the leftmost such pair on ties) until no adjacent pair has a merge. O(n log n) in the
// piece's length through a heap of candidate pairs over a linked list of symbols.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace hearth::tokenizer {

// Merge rules keyed by the pair of token ids: an open-addressing table, for speed.
class MergeTable {
  public:
    struct Merge {
        int32_t rank = -1;  // -1: no merge for this pair
        int32_t result = -1;
    };

    void reserve(size_t count);
    // A later rule for the same pair replaces the earlier one (as HF's HashMap collect does).
    void insert(int32_t left, int32_t right, Merge merge);
    Merge find(int32_t left, int32_t right) const;
    size_t size() const { return size_; }

  private:
    struct Slot {
        uint64_t key = kEmpty;
        Merge merge;
    };
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    static uint64_t key_of(int32_t left, int32_t right) {
        return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
    }
    size_t slot_index(uint64_t key) const;
    void grow();

    std::vector<Slot> slots_;
    size_t size_ = 0;
};

// Scratch space reused across pieces (one per encode call).
struct BpeWorkspace {
    struct Symbol {
        int32_t id;
        int32_t prev;
        int32_t next;
    };
    struct Candidate {
        int32_t rank;
        int32_t left;  // symbol index (the byte offset of its start)
        int32_t left_id;
        int32_t right_id;
    };
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
};

// Appends the token ids of `piece` (raw bytes, at least one) to `out`. `byte_ids` are the ids
// of the 256 single-byte tokens.
void bpe_encode(std::string_view piece, const std::array<int32_t, 256>& byte_ids, const MergeTable& merges,
                BpeWorkspace& workspace, std::vector<int32_t>& out);

}  // namespace hearth::tokenizer
