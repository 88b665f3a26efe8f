// The gap between an f16 value of x's size and the next: 2^-10 of its binade, 2^-24 below 2^-14
// (subnormals). Rounding x to f16 moves it by at most half of this; the matmul tests' tolerances
// are built from it.
#pragma once

#include <cmath>

namespace hearth::testing {

inline double f16_spacing(double x) {
    const double magnitude = std::fabs(x);
    if (magnitude < 0x1p-14) return 0x1p-24;
    return std::ldexp(1.0, std::ilogb(magnitude) - 10);
}

}  // namespace hearth::testing
