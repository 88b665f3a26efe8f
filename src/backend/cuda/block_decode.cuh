// One weight value at a time, read from a DeviceMatrix: the plain decoding of every block format
// the CUDA kernels accept. The slow paths (the generic matrix-vector kernel, dequantizing for a
// GEMM) use it; the fast kernels decode the same bits many at once and are tested against it.
// Block layouts as in src/quant/*.h (ggml-common.h).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace hearth::cuda {

__device__ __forceinline__ float load_half(const uint8_t* p) {
    return __half2float(*reinterpret_cast<const __half*>(p));
}

// Q4_K and Q5_K: 6-bit scale and min of sub-block j from the 12 packed bytes.
__device__ __forceinline__ void unpack_scale_min_k4(const uint8_t* packed, int j, int& scale, int& min) {
    if (j < 4) {
        scale = packed[j] & 63;
        min = packed[j + 4] & 63;
    } else {
        scale = (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4);
        min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
}

// The same from the 12 bytes held in three registers (bytes 0-3, 4-7, 8-11), for a j known at
// compile time: byte shifts instead of indexing, which would put the registers in local memory.
__device__ __forceinline__ void unpack_scale_min_k4(uint32_t bytes_0_3, uint32_t bytes_4_7, uint32_t bytes_8_11,
                                                    int j, int& scale, int& min) {
    const int shift = 8 * (j % 4);
    if (j < 4) {
        scale = (bytes_0_3 >> shift) & 63;
        min = (bytes_4_7 >> shift) & 63;
    } else {
        scale = ((bytes_8_11 >> shift) & 0x0f) | (((bytes_0_3 >> (shift + 6)) & 3) << 4);
        min = ((bytes_8_11 >> (shift + 4)) & 0x0f) | (((bytes_4_7 >> (shift + 6)) & 3) << 4);
    }
}

// Q3_K: signed 6-bit scale of sub-block j (of 16 values), stored as scale + 32.
__device__ __forceinline__ int unpack_scale_q3_k(const uint8_t* scales, int j) {
    const int low = j < 8 ? scales[j % 8] & 15 : scales[j % 8] >> 4;
    const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

// Four Q6_K levels (low 4 bits from `low`, top 2 from bits `shift` of each byte of `high`) minus
// 32, byte by byte: 0..63 becomes -32..31 and no byte borrows from its neighbour.
__device__ __forceinline__ int q6_levels(int low, int high, int shift) {
    return static_cast<int>(__vsub4(static_cast<unsigned>(low | (((high >> shift) & 0x03030303) << 4)), 0x20202020u));
}

__device__ inline float weight_value(const DeviceMatrix& m, int64_t row, int64_t col) {
    const uint8_t* r = m.data + row * m.row_stride;
    const int64_t block = col / 256;
    const int e = static_cast<int>(col % 256);  // index inside a 256-value super-block
    switch (m.type) {
        case type_id::F32: return reinterpret_cast<const float*>(r)[col];
        case type_id::F16: return __half2float(reinterpret_cast<const __half*>(r)[col]);
        case type_id::BF16: return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(r)[col]);
        case type_id::Q4_0: {
            // 18-byte blocks of 32: fp16 d, then byte j holds value j (low) and j + 16 (high).
            const uint8_t* b = r + 18 * (col / 32);
            const int i = static_cast<int>(col % 32);
            const int q = i < 16 ? b[2 + i] & 15 : b[2 + i - 16] >> 4;
            return load_half(b) * static_cast<float>(q - 8);
        }
        case type_id::Q8_0:  // split: quants in element order, then the fp16 scales
            return load_half(r + m.scales_offset + 2 * (col / 32)) * static_cast<float>(reinterpret_cast<const int8_t*>(r)[col]);
        case type_id::Q2_K: {
            // scales[16], qs[64], d, dmin (84 bytes).
            const uint8_t* b = r + 84 * block;
            const int q = (b[16 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            const int sm = b[e / 16];
            return load_half(b + 80) * static_cast<float>((sm & 15) * q) - load_half(b + 82) * static_cast<float>(sm >> 4);
        }
        case type_id::Q3_K: {
            // hmask[32], qs[64], scales[12], d (110 bytes); a clear high bit means level - 4.
            const uint8_t* b = r + 110 * block;
            const int low = (b[32 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            const int level = low - ((b[e % 32] >> (e / 32)) & 1 ? 0 : 4);
            return load_half(b + 108) * static_cast<float>(unpack_scale_q3_k(b + 96, e / 16) * level);
        }
        case type_id::Q4_K: {
            // d, dmin, scales[12], qs[128] (144 bytes).
            const uint8_t* b = r + 144 * block;
            const uint8_t byte = b[16 + 32 * (e / 64) + e % 32];
            const int q = (e % 64) < 32 ? byte & 15 : byte >> 4;
            int scale, min;
            unpack_scale_min_k4(b + 4, e / 32, scale, min);
            return load_half(b) * static_cast<float>(scale * q) - load_half(b + 2) * static_cast<float>(min);
        }
        case type_id::Q5_K: {
            // d, dmin, scales[12], qh[32], qs[128] (176 bytes).
            const uint8_t* b = r + 176 * block;
            const uint8_t byte = b[48 + 32 * (e / 64) + e % 32];
            const int high_half = (e % 64) >= 32;
            const int low = high_half ? byte >> 4 : byte & 15;
            const int high = (b[16 + e % 32] >> (2 * (e / 64) + high_half)) & 1;
            int scale, min;
            unpack_scale_min_k4(b + 4, e / 32, scale, min);
            return load_half(b) * static_cast<float>(scale * (low | (high << 4))) -
                   load_half(b + 2) * static_cast<float>(min);
        }
        case type_id::Q6_K: {
            // split: ql[128], qh[64], scales[16] (208 bytes) per block, then the fp16 scales.
            const uint8_t* b = r + 208 * block;
            const int h = e / 128, k = (e % 128) / 32, l = e % 32;
            const uint8_t ql = b[64 * h + 32 * (k % 2) + l];
            const int low = k < 2 ? ql & 15 : ql >> 4;
            const int high = (b[128 + 32 * h + l] >> (2 * k)) & 3;
            const int scale = reinterpret_cast<const int8_t*>(b + 192)[e / 16];
            return load_half(r + m.scales_offset + 2 * block) * static_cast<float>(scale * ((low | (high << 4)) - 32));
        }
        default: return __int_as_float(0x7fc00000);  // NaN: can_multiply refused this type
    }
}

}  // namespace hearth::cuda
