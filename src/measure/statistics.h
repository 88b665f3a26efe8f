// Small statistics the measuring tools share.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

namespace hearth::measure {

// The value at `fraction` (0..1) of sorted values, interpolated linearly between the two around
// fraction · (n − 1), as numpy's default percentile. `sorted` must not be empty.
template <typename T>
double sorted_percentile(std::span<const T> sorted, double fraction) {
    const double rank = std::clamp(fraction, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
    const size_t below = static_cast<size_t>(std::floor(rank));
    const size_t above = std::min(below + 1, sorted.size() - 1);
    const double low = sorted[below], high = sorted[above];
    return low + (rank - static_cast<double>(below)) * (high - low);
}

}  // namespace hearth::measure
