#include "tokenizer/bpe.h"

#include <algorithm>
#include <bit>

namespace hearth::tokenizer {

void MergeTable::reserve(size_t count) {
    const size_t capacity = std::bit_ceil(std::max<size_t>(16, count * 2));
    if (capacity <= slots_.size()) return;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    size_ = 0;
    for (const Slot& slot : old) {
        if (slot.key != kEmpty)
            insert(static_cast<int32_t>(slot.key >> 32), static_cast<int32_t>(slot.key), slot.merge);
    }
}

void MergeTable::grow() {
    reserve(std::max<size_t>(16, slots_.size()));
}

size_t MergeTable::slot_index(uint64_t key) const {
    // Fibonacci hashing spreads the (left, right) pairs, whose ids are small and clustered.
    const uint64_t hash = key * 0x9E3779B97F4A7C15ull;
    const size_t mask = slots_.size() - 1;
    size_t index = static_cast<size_t>(hash >> 20) & mask;
    while (slots_[index].key != kEmpty && slots_[index].key != key) index = (index + 1) & mask;
    return index;
}

void MergeTable::insert(int32_t left, int32_t right, Merge merge) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const uint64_t key = key_of(left, right);
    Slot& slot = slots_[slot_index(key)];
    if (slot.key == kEmpty) ++size_;
    slot.key = key;
    slot.merge = merge;
}

MergeTable::Merge MergeTable::find(int32_t left, int32_t right) const {
    if (slots_.empty()) return {};
    return slots_[slot_index(key_of(left, right))].merge;
}

namespace {

// std::push_heap/pop_heap build a max-heap; this ordering puts the lowest rank, then the
// leftmost position, on top.
bool lower_priority(const BpeWorkspace::Candidate& a, const BpeWorkspace::Candidate& b) {
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.left > b.left;
}

void push_candidate(BpeWorkspace& w, const MergeTable& merges, int32_t left) {
    const int32_t right = w.symbols[left].next;
    if (right < 0) return;
    const int32_t left_id = w.symbols[left].id;
    const int32_t right_id = w.symbols[right].id;
    const MergeTable::Merge merge = merges.find(left_id, right_id);
    if (merge.rank < 0) return;
    w.heap.push_back({merge.rank, left, left_id, right_id});
    std::push_heap(w.heap.begin(), w.heap.end(), lower_priority);
}

// A candidate is stale when either symbol has since merged: symbols only ever grow, so the
// pair still holds exactly when both ids are unchanged.
bool is_current(const BpeWorkspace& w, const BpeWorkspace::Candidate& c) {
    const BpeWorkspace::Symbol& left = w.symbols[c.left];
    return left.id == c.left_id && left.next >= 0 && w.symbols[left.next].id == c.right_id;
}

}  // namespace

void bpe_encode(std::string_view piece, const std::array<int32_t, 256>& byte_ids, const MergeTable& merges,
                BpeWorkspace& w, std::vector<int32_t>& out) {
    const auto n = static_cast<int32_t>(piece.size());
    w.symbols.resize(piece.size());
    for (int32_t i = 0; i < n; ++i) {
        w.symbols[i] = {byte_ids[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
    }
    w.heap.clear();
    for (int32_t i = 0; i + 1 < n; ++i) push_candidate(w, merges, i);

    while (!w.heap.empty()) {
        std::pop_heap(w.heap.begin(), w.heap.end(), lower_priority);
        const BpeWorkspace::Candidate top = w.heap.back();
        w.heap.pop_back();
        if (!is_current(w, top)) continue;

        BpeWorkspace::Symbol& left = w.symbols[top.left];
        BpeWorkspace::Symbol& right = w.symbols[left.next];
        left.id = merges.find(top.left_id, top.right_id).result;
        left.next = right.next;
        if (right.next >= 0) w.symbols[right.next].prev = top.left;
        right.id = -1;  // dead

        if (left.prev >= 0) push_candidate(w, merges, left.prev);
        push_candidate(w, merges, top.left);
    }
    for (int32_t i = 0; i >= 0 && i < n; i = w.symbols[i].next) out.push_back(w.symbols[i].id);
}

}  // namespace hearth::tokenizer
