// The k largest values of a row, ranked as the sampler ranks logits: the reference for every
// backend's top_k (the CUDA kernel is tested against it), and the CPU's own.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace hearth::backend {

// Whether value a (at column_a) ranks before value b (at column_b): a larger value first, NaN
// before every number (so that whoever reads the top sees it), -0 equal to +0, and equal values
// by the lower column. A total order: no two columns rank equal.
inline bool ranks_above(float a, int64_t column_a, float b, int64_t column_b) {
    const bool a_nan = std::isnan(a), b_nan = std::isnan(b);
    if (a_nan != b_nan) return a_nan;
    if (!a_nan && a != b) return a > b;
    return column_a < column_b;
}

// The k (<= cols) top-ranked values of row, first first, and their columns.
inline void rank_top_k(const float* row, int64_t cols, int k, int32_t* columns, float* values) {
    std::vector<int32_t> order(static_cast<size_t>(cols));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [row](int32_t a, int32_t b) { return ranks_above(row[a], a, row[b], b); });
    for (int i = 0; i < k; ++i) {
        columns[i] = order[static_cast<size_t>(i)];
        values[i] = row[order[static_cast<size_t>(i)]];
    }
}

}  // namespace hearth::backend
