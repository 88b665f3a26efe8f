// Small statistics over a group of values that several quantizers start from.
#pragma once

#include <cfloat>
#include <cmath>

namespace hearth::quant {

// A group whose largest magnitude is below this counts as all zero (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

struct LargestMagnitude {
    float value = 0.0f;      // the first element of largest magnitude, with its sign
    float magnitude = 0.0f;  // its absolute value
};

// The sign matters: symmetric formats map this element to their most negative level, so the
// scale takes the opposite sign.
inline LargestMagnitude largest_magnitude(const float* x, int n) {
    LargestMagnitude result;
    for (int i = 0; i < n; ++i) {
        const float magnitude = std::fabs(x[i]);
        if (magnitude > result.magnitude) result = {x[i], magnitude};
    }
    return result;
}

struct Range {
    float min;
    float max;
};

// Smallest and largest value; starts from ±FLT_MAX so that a group of one value works.
inline Range value_range(const float* x, int n) {
    Range range{FLT_MAX, -FLT_MAX};
    for (int i = 0; i < n; ++i) {
        if (x[i] < range.min) range.min = x[i];
        if (x[i] > range.max) range.max = x[i];
    }
    return range;
}

}  // namespace hearth::quant
