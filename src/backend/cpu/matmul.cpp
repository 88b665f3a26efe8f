#include "backend/cpu/matmul.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/matmul_k_quants.h"
#include "backend/cpu/matmul_kernels.h"
#include "common/cpu_features.h"
#include "common/error.h"
#include "quant/quant.h"

namespace hearth::cpu {

std::string_view isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return "scalar";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
    }
    return "unknown";
}

Isa best_isa() {
    const CpuFeatures& f = cpu_features();
    if (f.avx512 && f.fma && f.f16c) return Isa::Avx512;
    if (f.avx2 && f.fma && f.f16c) return Isa::Avx2;
    return Isa::Scalar;
}

std::vector<Isa> supported_isas() {
    std::vector<Isa> isas{Isa::Scalar};
    const Isa best = best_isa();
    if (best == Isa::Avx2 || best == Isa::Avx512) isas.push_back(Isa::Avx2);
    if (best == Isa::Avx512) isas.push_back(Isa::Avx512);
    return isas;
}

bool can_matmul(quant::Type type) { return quant::can_dequantize(type); }

namespace {

using detail::MatmulKernel;

bool has_repacked_kernel(quant::Type type, Isa isa) {
    return isa == Isa::Avx512 && cpu_features().avx512_vnni && (type == quant::Type::Q4_K || type == quant::Type::Q6_K);
}

// The kernel written for the widest ISA not above `isa`, or the generic one.
const MatmulKernel& select_kernel(quant::Type type, Isa isa, WeightLayout layout = WeightLayout::InFile) {
    if (layout == WeightLayout::Repacked) {
        if (!has_repacked_kernel(type, isa))
            fail("matmul: no kernel for repacked {} on {}", quant::type_name(type), isa_name(isa));
        return type == quant::Type::Q4_K ? detail::k_quants::kRepackedQ4KKernel : detail::k_quants::kRepackedQ6KKernel;
    }
    if (!can_matmul(type)) fail("matmul: no kernel for tensor type {}", quant::type_name(type));
    for (int level = static_cast<int>(isa); level >= 0; --level) {
        const Isa candidate = static_cast<Isa>(level);
        for (auto find : {detail::find_k_quant_kernel, detail::find_block32_kernel, detail::find_float_kernel}) {
            if (const MatmulKernel* kernel = find(type, candidate)) return *kernel;
        }
    }
    return detail::generic_kernel(type);
}

void check_shape(const WeightMatrix& w) {
    const auto row_bytes = quant::row_bytes(w.type, w.cols);
    if (!row_bytes || *row_bytes != w.row_bytes)
        fail("matmul: a {} row of {} values is not {} bytes", quant::type_name(w.type), w.cols, w.row_bytes);
}

}  // namespace

size_t repacked_bytes(const WeightMatrix& w, Isa isa) {
    if (w.layout != WeightLayout::InFile || !has_repacked_kernel(w.type, isa)) return 0;
    return w.type == quant::Type::Q4_K ? detail::k_quants::q4_k_repacked_bytes(w.rows, w.cols)
                                       : detail::k_quants::q6_k_repacked_bytes(w.rows, w.cols);
}

void repack_weights(const WeightMatrix& w, int64_t group_begin, int64_t group_end, uint8_t* repacked, Isa isa) {
    check_shape(w);
    if (repacked_bytes(w, isa) == 0) fail("matmul: {} has no repacked layout here", quant::type_name(w.type));
    if (w.type == quant::Type::Q4_K) return detail::k_quants::repack_q4_k(w, group_begin, group_end, repacked);
    detail::k_quants::repack_q6_k(w, group_begin, group_end, repacked);
}

size_t prepared_row_bytes(quant::Type weight_type, int64_t cols, Isa isa) {
    return select_kernel(weight_type, isa).prepared_row_bytes(cols);
}

void prepare_activations(quant::Type weight_type, const float* x, int64_t tokens, int64_t cols, uint8_t* prepared,
                         Isa isa) {
    const MatmulKernel& kernel = select_kernel(weight_type, isa);
    const size_t stride = kernel.prepared_row_bytes(cols);
    for (int64_t t = 0; t < tokens; ++t) kernel.prepare_row(x + t * cols, cols, prepared + t * stride);
}

void matmul_prepared(const WeightMatrix& w, const uint8_t* prepared, int64_t tokens, int64_t row_begin,
                     int64_t row_end, float* y, int64_t y_stride, Isa isa) {
    check_shape(w);
    const MatmulKernel& kernel = select_kernel(w.type, isa, w.layout);
    kernel.rows(w, prepared, kernel.prepared_row_bytes(w.cols), tokens, row_begin, row_end, y, y_stride);
}

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t tokens, float* y,
            std::vector<uint8_t>& scratch, Isa isa) {
    check_shape(w);
    if (tokens <= 0 || w.rows <= 0) return;
    const MatmulKernel& kernel = select_kernel(w.type, isa, w.layout);
    const size_t stride = kernel.prepared_row_bytes(w.cols);
    if (scratch.size() < stride * tokens) scratch.resize(stride * tokens);
    uint8_t* prepared = scratch.data();
    pool.run(tokens, [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) kernel.prepare_row(x + t * w.cols, w.cols, prepared + t * stride);
    });
    // Rows go out in chunks claimed in turn, so a thread the OS preempts (common on a busy
    // machine or a VM) delays only its chunk, not half the matrix. A chunk is a multiple of 16
    // rows, so no two threads write the same cache line of y, and there are several per thread.
    constexpr int64_t kRowGrain = 16;
    constexpr int64_t kChunksPerThread = 8;
    const int64_t grains = (w.rows + kRowGrain - 1) / kRowGrain;
    const int64_t grains_per_chunk = std::max<int64_t>(1, grains / (kChunksPerThread * pool.thread_count()));
    pool.run_dynamic(grains, grains_per_chunk, [&](int64_t begin, int64_t end, int) {
        const int64_t row_begin = begin * kRowGrain;
        const int64_t row_end = std::min(w.rows, end * kRowGrain);
        kernel.rows(w, prepared, stride, tokens, row_begin, row_end, y, w.rows);
    });
}

void matmul_reference(const WeightMatrix& w, const float* x, int64_t tokens, float* y) {
    check_shape(w);
    std::vector<float> row(w.cols);
    for (int64_t r = 0; r < w.rows; ++r) {
        quant::dequantize_row(w.type, w.data + r * w.row_bytes, row.data(), w.cols);
        for (int64_t t = 0; t < tokens; ++t) {
            const float* xt = x + t * w.cols;
            double sum = 0;
            for (int64_t i = 0; i < w.cols; ++i) sum += static_cast<double>(row[i]) * xt[i];
            y[t * w.rows + r] = static_cast<float>(sum);
        }
    }
}

}  // namespace hearth::cpu
