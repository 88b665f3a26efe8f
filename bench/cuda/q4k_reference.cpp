#include "q4k_reference.h"

#include <vector>

#include "quant/quant.h"

namespace hearth::bench {

double q4k_row_times(const uint8_t* row, int64_t cols, const int8_t* values, const float* scales) {
    std::vector<float> decoded(static_cast<size_t>(cols));
    quant::dequantize_row(quant::Type::Q4_K, row, decoded.data(), cols);
    double sum = 0;
    for (int64_t i = 0; i < cols; ++i) sum += double{decoded[i]} * values[i] * scales[i / 32];
    return sum;
}

}  // namespace hearth::bench
