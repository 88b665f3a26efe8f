#include "quant/rows.h"

#include "common/error.h"
#include "common/parallel.h"
#include "quant/quant.h"

namespace hearth::quant {
namespace {

// Rows per task: enough work (~64K elements) to amortize a thread's start.
int64_t row_grain(int64_t row_length) { return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(row_length, 1)); }

size_t checked_row_bytes(Type type, int64_t row_length) {
    const auto bytes = row_bytes(type, row_length);
    if (!bytes) {
        fail("rows of {} elements do not hold whole {}-element blocks of {}", row_length, type_info(type).block_elems,
             type_name(type));
    }
    return *bytes;
}

}  // namespace

void quantize_rows(Type type, const float* src, uint8_t* dst, int64_t rows, int64_t row_length, int threads) {
    const size_t stride = checked_row_bytes(type, row_length);
    parallel_for(rows, threads, row_grain(row_length), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) quantize_row(type, src + r * row_length, dst + r * stride, row_length);
    });
}

void dequantize_rows(Type type, const uint8_t* src, float* dst, int64_t rows, int64_t row_length, int threads) {
    const size_t stride = checked_row_bytes(type, row_length);
    parallel_for(rows, threads, row_grain(row_length), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) dequantize_row(type, src + r * stride, dst + r * row_length, row_length);
    });
}

}  // namespace hearth::quant
