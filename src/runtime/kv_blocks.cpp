#include "runtime/kv_blocks.h"

#include <algorithm>

#include "backend/backend.h"
#include "common/error.h"

namespace hearth::runtime {

KvBlockPool::KvBlockPool(int64_t blocks) : total_(blocks) {
    if (blocks < 0) fail("KV block pool: {} blocks", blocks);
    // Block 0 is handed out first.
    free_.resize(static_cast<size_t>(blocks));
    for (int64_t i = 0; i < blocks; ++i) free_[static_cast<size_t>(i)] = static_cast<int32_t>(blocks - 1 - i);
}

bool KvBlockPool::grow(int sequence, int64_t length) {
    std::vector<int32_t>& held = held_[sequence];
    const int64_t needed = backend::kv_capacity_for(length) / backend::kKvBlockSize - static_cast<int64_t>(held.size());
    if (needed <= 0) return true;
    if (needed > free_blocks()) {
        if (held.empty()) held_.erase(sequence);
        return false;
    }
    for (int64_t i = 0; i < needed; ++i) {
        held.push_back(free_.back());
        free_.pop_back();
    }
    return true;
}

void KvBlockPool::release(int sequence) {
    const auto found = held_.find(sequence);
    if (found == held_.end()) return;
    // Back in reverse, so that the next sequence takes them in the same order.
    free_.insert(free_.end(), found->second.rbegin(), found->second.rend());
    held_.erase(found);
}

std::span<const int32_t> KvBlockPool::blocks_of(int sequence) const {
    const auto found = held_.find(sequence);
    if (found == held_.end()) return {};
    return found->second;
}

int64_t KvBlockPool::tables(std::span<const int> sequences, std::vector<int32_t>& out) const {
    int64_t stride = 1;
    for (int s : sequences) stride = std::max(stride, static_cast<int64_t>(blocks_of(s).size()));
    out.assign(sequences.size() * static_cast<size_t>(stride), -1);
    for (size_t i = 0; i < sequences.size(); ++i) {
        const std::span<const int32_t> blocks = blocks_of(sequences[i]);
        std::copy(blocks.begin(), blocks.end(), out.begin() + static_cast<std::ptrdiff_t>(i * stride));
    }
    return stride;
}

}  // namespace hearth::runtime
