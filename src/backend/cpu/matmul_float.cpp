// The float-weight kernels in plain C++: the reference the SIMD kernels (matmul_float_avx2.cpp,
// matmul_float_avx512.cpp) are held against, and the kernel on CPUs without AVX2.
#include "backend/cpu/matmul_float.h"

#include <type_traits>

#include "quant/fp16.h"

namespace hearth::cpu::detail {
namespace {

template <class Weights>
float widen_weight(typename Weights::Element value) {
    if constexpr (std::is_same_v<Weights, F16Weights>) return quant::fp16_to_fp32(value);
    else if constexpr (std::is_same_v<Weights, BF16Weights>) return quant::bf16_to_fp32(value);
    else return value;
}

template <class Weights>
void rows_scalar(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                 int64_t row_begin, int64_t row_end, float* y, int64_t y_stride) {
    using Element = typename Weights::Element;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const auto* weights = reinterpret_cast<const Element*>(w.data + r * w.row_bytes);
        for (int64_t t = 0; t < tokens; ++t) {
            const auto* x = reinterpret_cast<const float*>(prepared + t * prepared_stride);
            float sum = 0.0f;
            for (int64_t i = 0; i < w.cols; ++i) sum += widen_weight<Weights>(weights[i]) * x[i];
            y[t * y_stride + r] = sum;
        }
    }
}

template <class Weights>
constexpr MatmulKernel kScalarKernel{float_prepared_row_bytes, prepare_float_row, rows_scalar<Weights>};
template <>
constexpr MatmulKernel kScalarKernel<F16Weights>{f16_prepared_row_bytes, prepare_f16_row_scalar,
                                                 rows_scalar<F16Weights>};

const MatmulKernel* find_float_kernel_scalar(quant::Type type) {
    switch (type) {
        case quant::Type::F32: return &kScalarKernel<F32Weights>;
        case quant::Type::F16: return &kScalarKernel<F16Weights>;
        case quant::Type::BF16: return &kScalarKernel<BF16Weights>;
        default: return nullptr;
    }
}

}  // namespace

const MatmulKernel* find_float_kernel(quant::Type type, Isa isa) {
    switch (isa) {
        case Isa::Scalar: return find_float_kernel_scalar(type);
        case Isa::Avx2: return find_float_kernel_avx2(type);
        case Isa::Avx512: return find_float_kernel_avx512(type);
    }
    return nullptr;
}

}  // namespace hearth::cpu::detail
