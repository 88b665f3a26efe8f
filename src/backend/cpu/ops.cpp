// The fast elementwise ops. They cost O(tokens * width) against matmul's O(tokens * width^2),
// so they are plain f32 loops the compiler vectorizes, split across threads by rows.
#include "backend/cpu/ops.h"

#include "backend/cpu/vector_math.h"
#include "common/portable_exp.h"

#include <cmath>

namespace hearth::cpu {
namespace {

// Elementwise work below this many values runs on the calling thread: waking workers costs more.
constexpr int64_t kParallelElements = 1 << 14;
constexpr int64_t kElementChunk = 1 << 12;

void rmsnorm_row(const float* x, int64_t cols, const float* weight, float epsilon, float* out) {
    const float mean_square = dot_f32(x, x, cols) / static_cast<float>(cols);
    const float inverse_rms = 1.0f / std::sqrt(mean_square + epsilon);
    for (int64_t i = 0; i < cols; ++i) out[i] = x[i] * inverse_rms * weight[i];
}

template <class Fn>
void for_element_chunks(ThreadPool& pool, int64_t count, const Fn& fn) {
    if (count < kParallelElements) {
        fn(0, count);
        return;
    }
    const int64_t chunks = (count + kElementChunk - 1) / kElementChunk;
    pool.run(chunks, [&](int64_t begin, int64_t end, int) {
        fn(begin * kElementChunk, std::min(count, end * kElementChunk));
    });
}

}  // namespace

void rmsnorm(ThreadPool& pool, const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon,
             float* out) {
    pool.run(rows, [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) rmsnorm_row(x + t * cols, cols, weight, epsilon, out + t * cols);
    });
}

void compute_rope_table(ThreadPool& pool, std::span<const int32_t> positions, const backend::RopeParams& rope,
                        RopeTable& table) {
    const int64_t rows = static_cast<int64_t>(positions.size()), pairs = rope.rotary_dims / 2;
    table.pairs = pairs;
    table.cosines.resize(rows * pairs);
    table.sines.resize(rows * pairs);
    pool.run(rows, [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) {
            for (int64_t i = 0; i < pairs; ++i) {
                const double theta = rope.freq_scale * positions[t] * rope.inverse_frequency(i);
                table.cosines[t * pairs + i] = static_cast<float>(std::cos(theta));
                table.sines[t * pairs + i] = static_cast<float>(std::sin(theta));
            }
        }
    });
}

void apply_rope(ThreadPool& pool, float* x, int64_t rows, int64_t cols, const RopeTable& table,
                const backend::RopeParams& rope) {
    const int64_t pairs = table.pairs;
    pool.run(rows, [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) {
            const float* cosines = table.cosines.data() + t * pairs;
            const float* sines = table.sines.data() + t * pairs;
            for (int64_t head = 0; head < cols / rope.head_dim; ++head) {
                float* h = x + t * cols + head * rope.head_dim;
                for (int64_t i = 0; i < pairs; ++i) {
                    const float x0 = h[2 * i], x1 = h[2 * i + 1];
                    h[2 * i] = x0 * cosines[i] - x1 * sines[i];
                    h[2 * i + 1] = x0 * sines[i] + x1 * cosines[i];
                }
            }
        }
    });
}

void rope(ThreadPool& pool, float* x, int64_t rows, int64_t cols, std::span<const int32_t> positions,
          const backend::RopeParams& rope) {
    RopeTable table;
    compute_rope_table(pool, positions.first(rows), rope, table);
    apply_rope(pool, x, rows, cols, table, rope);
}

namespace {

// silu(g) * u with sigmoid(g) from e = exp(-|g|), which never overflows: 1 / (1 + e) for g >= 0,
// e / (1 + e) below.
HEARTH_VECTOR_CLONES void swiglu_range(float* gate, const float* up, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
        const float g = gate[i];
        const float e = portable_exp(-std::fabs(g));
        gate[i] = g * (g >= 0.0f ? 1.0f : e) / (1.0f + e) * up[i];
    }
}

}  // namespace

void swiglu(ThreadPool& pool, float* gate, const float* up, int64_t count) {
    for_element_chunks(pool, count, [&](int64_t begin, int64_t end) { swiglu_range(gate, up, begin, end); });
}

void add(ThreadPool& pool, float* x, const float* y, int64_t count) {
    for_element_chunks(pool, count, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) x[i] += y[i];
    });
}

}  // namespace hearth::cpu
