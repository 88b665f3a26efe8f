// Where weights lie in device memory: the file's layout, or (Q8_0, Q6_K) rows split into quants
// and scales so that the quants can be read 16 bytes at a time. See DeviceMatrix in kernels.h.
#include <cstring>

#include "backend/cuda/kernels.h"

namespace hearth::cuda {
namespace {

struct SplitBlock {
    size_t block_bytes;   // in the file
    size_t quant_bytes;   // the part that goes first
    size_t scale_offset;  // where the block's fp16 d lies in the file's block
    int64_t elements;
};

SplitBlock split_block(uint32_t type) {
    if (type == type_id::Q8_0) return {34, 32, 0, 32};  // d, qs[32]
    return {210, 208, 208, 256};                         // Q6_K: ql[128], qh[64], scales[16], d
}

}  // namespace

bool can_multiply(uint32_t type) {
    switch (type) {
        case type_id::F32:
        case type_id::F16:
        case type_id::BF16:
        case type_id::Q4_0:
        case type_id::Q8_0:
        case type_id::Q2_K:
        case type_id::Q3_K:
        case type_id::Q4_K:
        case type_id::Q5_K:
        case type_id::Q6_K: return true;
        default: return false;
    }
}

bool has_int8_matvec(uint32_t type) {
    return type == type_id::Q4_K || type == type_id::Q6_K || type == type_id::Q8_0;
}

bool has_int8_mma(uint32_t type) {
    return type == type_id::Q4_K || type == type_id::Q6_K || type == type_id::Q8_0;
}

MatmulPath matmul_path(uint32_t type, int64_t tokens) {
    if (tokens >= kMinMmaTokens && tokens <= kMaxMmaTokens && has_int8_mma(type)) return MatmulPath::Mma;
    if (tokens > kMaxMatvecTokens) return MatmulPath::Gemm;
    return has_int8_matvec(type) ? MatmulPath::MatvecInt8 : MatmulPath::MatvecFloat;
}

size_t device_scales_offset(uint32_t type, int64_t cols) {
    if (!has_split_layout(type)) return 0;
    const SplitBlock s = split_block(type);
    return static_cast<size_t>(cols / s.elements) * s.quant_bytes;
}

void split_rows(uint32_t type, const uint8_t* file_rows, int64_t rows, int64_t cols, size_t file_row_bytes,
                uint8_t* device_rows) {
    const SplitBlock s = split_block(type);
    const int64_t blocks = cols / s.elements;
    const size_t stride = device_row_stride(type, file_row_bytes);
    const size_t scales_offset = device_scales_offset(type, cols);
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* in = file_rows + r * file_row_bytes;
        uint8_t* out = device_rows + r * stride;
        std::memset(out + file_row_bytes, 0, stride - file_row_bytes);
        for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* block = in + b * s.block_bytes;
            const size_t quants_at = s.scale_offset == 0 ? 2 : 0;  // Q8_0's d comes first
            std::memcpy(out + b * s.quant_bytes, block + quants_at, s.quant_bytes);
            std::memcpy(out + scales_offset + 2 * b, block + s.scale_offset, 2);
        }
    }
}

}  // namespace hearth::cuda
