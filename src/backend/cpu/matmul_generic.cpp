// The generic kernel: any type quant::dequantize_row supports. One weight row at a time is
// dequantized into a buffer that stays in L1 and dotted in f32 with every token's row, so no
// dequantized copy of the matrix ever exists. It is the fall-back for types without their own
// integer kernel, not a fast path.
#include <cstring>
#include <vector>

#include "backend/cpu/matmul_kernels.h"
#include "backend/cpu/vector_math.h"
#include "quant/quant.h"

namespace hearth::cpu::detail {
namespace {

size_t f32_row_bytes(int64_t cols) { return static_cast<size_t>(cols) * sizeof(float); }

void copy_f32_row(const float* x, int64_t cols, uint8_t* out) { std::memcpy(out, x, f32_row_bytes(cols)); }

void dequantize_then_dot_rows(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                              int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    thread_local std::vector<float> row;
    row.resize(w.cols);
    for (int64_t r = row_begin; r < row_end; ++r) {
        quant::dequantize_row(w.type, w.data + r * w.row_bytes, row.data(), w.cols);
        for (int64_t t = 0; t < tokens; ++t) {
            const auto* x = reinterpret_cast<const float*>(prepared + t * prepared_stride);
            y[t * y_stride + r] = dot_f32(row.data(), x, w.cols);
        }
    }
}

constexpr MatmulKernel kGeneric{f32_row_bytes, copy_f32_row, dequantize_then_dot_rows};

}  // namespace

const MatmulKernel& generic_kernel(quant::Type) { return kGeneric; }

}  // namespace hearth::cpu::detail
