// The reference ops: double precision, written as the formulas read. Slow on purpose.
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/ops.h"

namespace hearth::cpu::reference {

void rmsnorm(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon, float* out) {
    for (int64_t t = 0; t < rows; ++t) {
        const float* xt = x + t * cols;
        double sum_squares = 0;
        for (int64_t i = 0; i < cols; ++i) sum_squares += static_cast<double>(xt[i]) * xt[i];
        const double inverse_rms = 1.0 / std::sqrt(sum_squares / static_cast<double>(cols) + epsilon);
        for (int64_t i = 0; i < cols; ++i) out[t * cols + i] = static_cast<float>(xt[i] * inverse_rms * weight[i]);
    }
}

void rope(float* x, int64_t rows, int64_t cols, std::span<const int32_t> positions, const backend::RopeParams& rope) {
    for (int64_t t = 0; t < rows; ++t) {
        for (int64_t head = 0; head < cols / rope.head_dim; ++head) {
            float* h = x + t * cols + head * rope.head_dim;
            for (int64_t i = 0; i < rope.rotary_dims / 2; ++i) {
                double inverse_frequency = std::pow(rope.freq_base, -2.0 * static_cast<double>(i) / rope.rotary_dims);
                if (rope.freq_factors) inverse_frequency /= rope.freq_factors[i];
                const double theta = rope.freq_scale * positions[t] * inverse_frequency;
                const double x0 = h[2 * i], x1 = h[2 * i + 1];
                h[2 * i] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
                h[2 * i + 1] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
            }
        }
    }
}

void attention(const float* q, int64_t rows, int64_t heads, const float* k, const float* v, int64_t key_count,
               int64_t kv_heads, int64_t head_dim, std::span<const int32_t> positions, float scale, float* out) {
    const int64_t group = heads / kv_heads;
    const int64_t kv_stride = kv_heads * head_dim;
    std::vector<double> scores(key_count);
    for (int64_t t = 0; t < rows; ++t) {
        const int64_t visible = std::min<int64_t>(key_count, positions[t] + 1);
        for (int64_t h = 0; h < heads; ++h) {
            const float* qh = q + (t * heads + h) * head_dim;
            const int64_t g = h / group;
            double max_score = -std::numeric_limits<double>::infinity();
            for (int64_t p = 0; p < visible; ++p) {
                double s = 0;
                for (int64_t i = 0; i < head_dim; ++i) s += static_cast<double>(qh[i]) * k[p * kv_stride + g * head_dim + i];
                scores[p] = s * scale;
                max_score = std::max(max_score, scores[p]);
            }
            double total = 0;
            for (int64_t p = 0; p < visible; ++p) total += scores[p] = std::exp(scores[p] - max_score);
            for (int64_t i = 0; i < head_dim; ++i) {
                double sum = 0;
                for (int64_t p = 0; p < visible; ++p) sum += scores[p] * v[p * kv_stride + g * head_dim + i];
                out[(t * heads + h) * head_dim + i] = static_cast<float>(sum / total);
            }
        }
    }
}

void swiglu(float* gate, const float* up, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
        const double g = gate[i];
        gate[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
    }
}

}  // namespace hearth::cpu::reference
