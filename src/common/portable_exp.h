// exp for non-positive arguments in plain float arithmetic, shared by the sampler and the CPU
// ops that need many exponentials (softmax weights, SiLU).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace hearth {

// exp(x) for x <= 0 (including -inf) in plain IEEE float arithmetic, so that what is built on
// it (the sampler's weights and drawn tokens, attention's softmax) is bit-identical on every
// machine (libm's expf differs between versions). Range reduction x = n·ln2 + r,
// |r| <= ln2/2, then a degree-7 Taylor polynomial: truncation error r^8/8! < 6e-9, about one
// float ulp in all. Loops over it vectorize, which libm calls do not.
inline float portable_exp(float x) {
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kLn2High = 0.693145751953125f;  // 16 significant bits: n·kLn2High is exact
    constexpr float kLn2Low = 1.42860682030941723212e-6f;
    constexpr float kRoundToInteger = 12582912.0f;  // 1.5·2^23: adding it rounds to an integer
    constexpr float kSmallestArgument = -87.0f;     // exp(-87) ≈ 1.6e-38, still a normal float
    const float clamped = std::max(x, kSmallestArgument);
    const float shifted = clamped * kLog2e + kRoundToInteger;
    const float n = shifted - kRoundToInteger;
    const int32_t exponent = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRoundToInteger);
    float r = clamped - n * kLn2High;
    r = r - n * kLn2Low;
    float poly = 1.0f / 5040.0f;
    poly = poly * r + 1.0f / 720.0f;
    poly = poly * r + 1.0f / 120.0f;
    poly = poly * r + 1.0f / 24.0f;
    poly = poly * r + 1.0f / 6.0f;
    poly = poly * r + 0.5f;
    poly = poly * r + 1.0f;
    poly = poly * r + 1.0f;
    const float scale = std::bit_cast<float>((exponent + 127) << 23);
    return x < kSmallestArgument ? 0.0f : poly * scale;
}

}  // namespace hearth
