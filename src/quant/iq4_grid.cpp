#include "quant/iq4_grid.h"

#include "quant/group_stats.h"

namespace hearth::quant {
namespace {

constexpr int kBlockElems = 32;
constexpr int kTrialSteps = 7;  // ggml's ntry when quantizing without importance matrix

struct Fit {
    float sum_qx = 0.0f;
    float sum_q2 = 0.0f;
};

Fit fit_at(const float* x, const float* weights, float inverse_scale) {
    Fit fit;
    for (int j = 0; j < kBlockElems; ++j) {
        const float q = kIq4Grid[nearest_iq4_level(inverse_scale * x[j])];
        fit.sum_qx += weights[j] * q * x[j];
        fit.sum_q2 += weights[j] * q * q;
    }
    return fit;
}

}  // namespace

int nearest_iq4_level(float x) {
    constexpr int kLevels = 16;
    if (x <= kIq4Grid[0]) return 0;
    if (x >= kIq4Grid[kLevels - 1]) return kLevels - 1;
    int low = 0;
    int high = kLevels - 1;
    while (high - low > 1) {
        const int middle = (low + high) / 2;
        if (x < kIq4Grid[middle]) {
            high = middle;
        } else {
            low = middle;
        }
    }
    return x - kIq4Grid[high - 1] < kIq4Grid[high] - x ? high - 1 : high;
}

float search_iq4_block_scale(const float x[32]) {
    const LargestMagnitude largest = largest_magnitude(x, kBlockElems);
    if (largest.magnitude < kGroupMaxEps) return 0.0f;
    const float max = largest.value;

    float weights[kBlockElems];
    for (int j = 0; j < kBlockElems; ++j) weights[j] = x[j] * x[j];

    // Start with the largest-magnitude value on the most negative level, then try nearby
    // inverse scales; keep the best least-squares scale (largest sum_qx²/sum_q2).
    const float start_scale = -max / kIq4Grid[0];
    Fit fit = fit_at(x, weights, 1 / start_scale);
    float scale = fit.sum_q2 > 0 ? fit.sum_qx / fit.sum_q2 : 0.0f;
    float best = scale * fit.sum_qx;
    for (int step = -kTrialSteps; step <= kTrialSteps; ++step) {
        const float inverse_scale = (step + kIq4Grid[0]) / max;
        fit = fit_at(x, weights, inverse_scale);
        if (fit.sum_q2 > 0 && fit.sum_qx * fit.sum_qx > best * fit.sum_q2) {
            scale = fit.sum_qx / fit.sum_q2;
            best = scale * fit.sum_qx;
        }
    }
    return scale;
}

void pack_iq4_levels(const uint8_t levels[32], uint8_t qs[16]) {
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(levels[j] | (levels[j + 16] << 4));
}

}  // namespace hearth::quant
