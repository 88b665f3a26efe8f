// The K-quant family of matmul kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS: super-blocks of
// 256 values). Every token's activation row is quantized to Q8_K once; a weight block is then
// dotted with it in integer arithmetic, sub-block by sub-block, and the super-block scales are
// applied in f32. This file holds the Q8_K preparation and the table that picks a kernel (the
// rest of what every ISA shares is in matmul_k_quants.h). The kernels themselves live in
// matmul_k_quants_scalar.cpp (the reference of the integer method), _avx2.cpp and _avx512.cpp.
#include "backend/cpu/matmul_k_quants.h"
#include "common/cpu_features.h"
#include "quant/q8_k.h"

namespace hearth::cpu::detail {
namespace k_quants {

size_t q8_k_row_bytes(int64_t cols) {
    return static_cast<size_t>(cols / quant::BlockQ8K::kElems) * sizeof(quant::BlockQ8K);
}

void quantize_row_to_q8_k(const float* x, int64_t cols, uint8_t* out) {
    if (cpu_features().avx2) return quantize_row_to_q8_k_avx2(x, cols, out);
    quant::quantize_row_q8_k(x, reinterpret_cast<quant::BlockQ8K*>(out), cols);
}

size_t q8_k_with_min_sums_row_bytes(int64_t cols) {
    return q8_k_row_bytes(cols) + static_cast<size_t>(cols / quant::BlockQ8K::kElems) * 8 * sizeof(float);
}

void quantize_row_to_q8_k_with_min_sums(const float* x, int64_t cols, uint8_t* out) {
    quantize_row_to_q8_k(x, cols, out);
    const int64_t blocks = cols / quant::BlockQ8K::kElems;
    const auto* q = reinterpret_cast<const quant::BlockQ8K*>(out);
    auto* sums = reinterpret_cast<float*>(out + blocks * sizeof(quant::BlockQ8K));
    for (int64_t b = 0; b < blocks; ++b)
        for (int j = 0; j < 8; ++j)
            sums[8 * b + j] = q[b].d * static_cast<float>(q[b].bsums[2 * j] + q[b].bsums[2 * j + 1]);
}

}  // namespace k_quants

const MatmulKernel* find_k_quant_kernel(quant::Type type, Isa isa) {
    switch (isa) {
        case Isa::Scalar:
            return k_quants::find_scalar_kernel(type);
        case Isa::Avx2:
            return k_quants::find_avx2_kernel(type);
        case Isa::Avx512:
            return k_quants::find_avx512_kernel(type, cpu_features().avx512_vnni);
    }
    return nullptr;
}

}  // namespace hearth::cpu::detail
