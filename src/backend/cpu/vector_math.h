// Small f32 vector helpers shared by the CPU ops.
#pragma once

#include <cstdint>

// A function whose loops vectorize, compiled once per ISA and picked when the program loads
// (an ifunc): the build targets baseline x86-64, and these loops gain 2-4x from wider vectors.
// fp-contract is off and none of the loops reassociates, so every copy gives the same bits.
#define HEARTH_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace hearth::cpu {

// sum a[i] * b[i] over eight independent partial sums, added in one fixed order: the loop
// vectorizes without reassociation (fp-contract is off), and the result never depends on the
// caller.
inline float dot_f32(const float* a, const float* b, int64_t n) {
    float partial[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) partial[k] += a[i + k] * b[i + k];
    for (; i < n; ++i) partial[0] += a[i] * b[i];
    return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

}  // namespace hearth::cpu
