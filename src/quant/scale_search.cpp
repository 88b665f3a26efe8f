#include "quant/scale_search.h"

#include <algorithm>
#include <cmath>

#include "quant/group_stats.h"
#include "quant/rounding.h"

namespace hearth::quant {
namespace {

int symmetric_level(float inverse_scale, float value, int nmax) {
    return std::clamp(nearest_int(inverse_scale * value), -nmax, nmax - 1);
}

// Sums of a weighted least-squares fit x ≈ scale * level: the best scale is sum_lx / sum_l2.
struct LeastSquares {
    float sum_lx = 0.0f;
    float sum_l2 = 0.0f;
};

// Levels at inverse_scale with weights x²; writes them (as level + nmax) when levels != nullptr.
LeastSquares fit_symmetric(int n, int nmax, const float* x, float inverse_scale, int8_t* levels) {
    LeastSquares fit;
    for (int i = 0; i < n; ++i) {
        const int level = symmetric_level(inverse_scale, x[i], nmax);
        if (levels != nullptr) levels[i] = static_cast<int8_t>(level + nmax);
        const float weight = x[i] * x[i];
        fit.sum_lx += weight * x[i] * level;
        fit.sum_l2 += weight * level * level;
    }
    return fit;
}

}  // namespace

float make_qx_quants(int n, int nmax, const float* x, int8_t* levels) {
    const LargestMagnitude extremum = largest_magnitude(x, n);
    if (extremum.magnitude < kGroupMaxEps) {
        std::fill(levels, levels + n, int8_t{0});
        return 0.0f;
    }
    const float max = extremum.value;
    LeastSquares fit = fit_symmetric(n, nmax, x, -nmax / max, levels);
    float scale = fit.sum_l2 != 0.0f ? fit.sum_lx / fit.sum_l2 : 0.0f;
    float best = scale * fit.sum_lx;
    for (int step = -9; step <= 9; ++step) {
        if (step == 0) continue;
        const float inverse_scale = -(nmax + 0.1f * step) / max;
        fit = fit_symmetric(n, nmax, x, inverse_scale, nullptr);
        // Compare sum_lx²/sum_l2 (the error reduction) without dividing.
        if (fit.sum_l2 > 0 && fit.sum_lx * fit.sum_lx > best * fit.sum_l2) {
            fit_symmetric(n, nmax, x, inverse_scale, levels);
            scale = fit.sum_lx / fit.sum_l2;
            best = scale * fit.sum_lx;
        }
    }
    return scale;
}

float make_q3_quants(int n, int nmax, const float* x, int8_t* levels) {
    const LargestMagnitude extremum = largest_magnitude(x, n);
    if (extremum.magnitude < kGroupMaxEps) {
        std::fill(levels, levels + n, int8_t{0});
        return 0.0f;
    }
    const float inverse_scale = -nmax / extremum.value;
    float sum_lx = 0.0f;
    float sum_l2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int level = symmetric_level(inverse_scale, x[i], nmax);
        levels[i] = static_cast<int8_t>(level);
        const float weight = x[i] * x[i];
        sum_lx += weight * x[i] * level;
        sum_l2 += weight * level * level;
    }
    // Coordinate descent: move one level to its best value given all the others, keep the
    // move if the fit improves (sum_lx²/sum_l2 grows).
    constexpr int kMaxPasses = 5;
    for (int pass = 0; pass < kMaxPasses; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float weight = x[i] * x[i];
            float others_lx = sum_lx - weight * x[i] * levels[i];
            if (others_lx <= 0) continue;
            float others_l2 = sum_l2 - weight * levels[i] * levels[i];
            int new_level = std::clamp(nearest_int(x[i] * others_l2 / others_lx), -nmax, nmax - 1);
            if (new_level == levels[i]) continue;
            others_lx += weight * x[i] * new_level;
            others_l2 += weight * new_level * new_level;
            if (others_l2 > 0 && others_lx * others_lx * sum_l2 > sum_lx * sum_lx * others_l2) {
                levels[i] = static_cast<int8_t>(new_level);
                sum_lx = others_lx;
                sum_l2 = others_l2;
                ++changed;
            }
        }
        if (changed == 0) break;
    }
    for (int i = 0; i < n; ++i) levels[i] = static_cast<int8_t>(levels[i] + nmax);
    return sum_l2 > 0.0f ? sum_lx / sum_l2 : 0.0f;
}

float make_qkx2_quants(int n, const float* x, const float* weights, const AffineSearch& search,
                       uint8_t* levels, float* minus_min, uint8_t* scratch) {
    const int nmax = search.nmax;
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0) min = 0;  // the offset only ever lowers: levels start at min(x, 0)
    if (max == min) {
        std::fill(levels, levels + n, uint8_t{0});
        *minus_min = -min;
        return 0.0f;
    }

    auto level_at = [&](float inverse_scale, float value) {
        return std::clamp(nearest_int(inverse_scale * (value - min)), 0, nmax);
    };
    auto error_of = [&](float diff) { return search.use_mad ? std::fabs(diff) : diff * diff; };

    float inverse_scale = nmax / (max - min);
    float scale = 1 / inverse_scale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        levels[i] = static_cast<uint8_t>(level_at(inverse_scale, x[i]));
        best_error += weights[i] * error_of(scale * levels[i] + min - x[i]);
    }
    if (search.nstep < 1) {
        *minus_min = -min;
        return scale;
    }

    // Each trial rounds at a new inverse scale, then solves the weighted 2x2 least-squares
    // problem x ≈ scale*level + min for those levels (min clamped to <= 0). As in ggml, a
    // trial that wins moves `min`, and later trials measure their range and levels from it.
    for (int step = 0; step <= search.nstep; ++step) {
        inverse_scale = (search.rmin + search.rdelta * step + nmax) / (max - min);
        float sum_l = 0;
        float sum_l2 = 0;
        float sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int level = level_at(inverse_scale, x[i]);
            scratch[i] = static_cast<uint8_t>(level);
            const float weight = weights[i];
            sum_l += weight * level;
            sum_l2 += weight * level * level;
            sum_xl += weight * level * x[i];
        }
        const float determinant = sum_w * sum_l2 - sum_l * sum_l;
        if (!(determinant > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / determinant;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / determinant;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float error = 0;
        for (int i = 0; i < n; ++i) {
            error += weights[i] * error_of(this_scale * scratch[i] + this_min - x[i]);
        }
        if (error < best_error) {
            std::copy(scratch, scratch + n, levels);
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *minus_min = -min;
    return scale;
}

}  // namespace hearth::quant
