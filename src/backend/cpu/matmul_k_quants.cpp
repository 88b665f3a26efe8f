// The K-quant family of matmul kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS: super-blocks of
// 256 values). Every token's activation row is quantized to Q8_K once; a weight block is then
// dotted with it in integer arithmetic, sub-block by sub-block, and the super-block scales are
// applied in f32. This file holds what every ISA shares: the Q8_K preparation, the loop over
// rows and tokens, and the table that picks a kernel. The kernels themselves live in
// matmul_k_quants_scalar.cpp (the reference of the integer method), _avx2.cpp and _avx512.cpp.
#include <algorithm>

#include "backend/cpu/matmul_kernels.h"
#include "common/cpu_features.h"
#include "quant/q8_k.h"

namespace hearth::cpu::detail {
namespace k_quants {

// The seam between the files of this family (each ISA file repeats the declarations it uses;
// only .cpp files belong to it). A tile is one weight row against `tokens` prepared rows:
// y[t * y_stride] for t < tokens.
using TileFn = void (*)(const uint8_t* weight_row, int64_t blocks, const uint8_t* prepared,
                        size_t prepared_stride, int tokens, float* y, int64_t y_stride);
const MatmulKernel* find_scalar_kernel(quant::Type type);
const MatmulKernel* find_avx2_kernel(quant::Type type);
const MatmulKernel* find_avx512_kernel(quant::Type type, bool vnni);

size_t q8_k_row_bytes(int64_t cols) {
    return static_cast<size_t>(cols / quant::BlockQ8K::kElems) * sizeof(quant::BlockQ8K);
}

void quantize_row_to_q8_k(const float* x, int64_t cols, uint8_t* out) {
    quant::quantize_row_q8_k(x, reinterpret_cast<quant::BlockQ8K*>(out), cols);
}

void for_each_tile(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                   int64_t row_begin, int64_t row_end, float* y, int64_t y_stride, int tile_tokens,
                   TileFn tile) {
    // A slab of weight rows stays in L2 (1 MiB on Zen 4, 256 KiB and up elsewhere) while every
    // tile of tokens streams past it, so a prompt reads the weights from memory once, not once
    // per tile. Decoding (one tile) just streams the rows.
    constexpr size_t kSlabBytes = 192 * 1024;
    const int64_t blocks = w.cols / quant::BlockQ8K::kElems;
    const int64_t slab_rows = std::max<int64_t>(1, static_cast<int64_t>(kSlabBytes / w.row_bytes));
    for (int64_t slab_begin = row_begin; slab_begin < row_end; slab_begin += slab_rows) {
        const int64_t slab_end = std::min(row_end, slab_begin + slab_rows);
        for (int64_t t = 0; t < tokens; t += tile_tokens) {
            const int n = static_cast<int>(std::min<int64_t>(tile_tokens, tokens - t));
            const uint8_t* x = prepared + t * prepared_stride;
            for (int64_t r = slab_begin; r < slab_end; ++r) {
                tile(w.data + r * w.row_bytes, blocks, x, prepared_stride, n, y + t * y_stride + r, y_stride);
            }
        }
    }
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
