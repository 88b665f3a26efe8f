// Seeded normally distributed values: the random inputs of the kernel tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace hearth::testing {

inline std::vector<float> normal_values(size_t count, uint32_t seed, float spread = 1.0f) {
    std::mt19937 generator(seed);
    std::normal_distribution<float> normal(0.0f, spread);
    std::vector<float> values(count);
    for (float& x : values) x = normal(generator);
    return values;
}

}  // namespace hearth::testing
