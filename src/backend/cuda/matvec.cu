// Matrix-vector products for decoding (a few tokens against every row of a weight), the work that
// bounds decode speed: each weight byte is read once per step, so the kernels aim at the memory
// bandwidth. One warp per row; each lane reads 16 bytes of quants per step, coalesced across the
// warp. Quantized weights meet activations rounded to int8 once per matmul (q8_1 blocks of 32) and
// multiply with dp4a; float weights meet f32 activations.
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/activation_blocks.cuh"
#include "backend/cuda/block_decode.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/warp.cuh"

namespace hearth::cuda {
namespace {

// Rows a thread block: a warp each, or kLongRowWarps warps each (below).
constexpr int kRowsPerBlock = 4;
// 16-byte loads a lane issues before its arithmetic: one for the int8 kernels, two for the float
// ones. More in flight cost registers and so resident warps, and warps hide the latency better
// (H100, 8B Q4_K_M tg128, same call: 1 load 351, 2 loads 339, 3 loads 321 tok/s; F16: 1 load
// 164.8, 2 loads 168.0, 4 loads 162.5).
constexpr int kLoadsInFlight = 1;
constexpr int kFloatLoadsInFlight = 2;
// One token's launch of at most kLongRowLaunchRows rows of at least kLongRowCols columns (the down
// projection: 4096 rows of 14336) on the int8 kernel has kLongRowWarps warps share each row: with
// one warp a row, its 31 warps a SM keep too few bytes in flight for the memory, and more loads a
// warp cost registers (H100, down alone: Q4_K 16.2 -> 14.4 us, Q6_K 25.1 -> 19.4, Q8_0 26.0 -> 23.2
// with 4 warps a row; 2 gave less). Those blocks have 16 warps, so a launch has as many blocks as
// with one warp a row: blocks of 4 warps (4x the blocks) gave the same kernel times alone but 0.9 %
// less at Q4_K_M tg128 (the launch bench: a block start costs ~0.6 ns of the GPU's time). The
// float kernel keeps one warp a row: sharing F16's rows (down; and every 4096-column matrix but
// gate+up) made them faster alone but F16 tg128 0.3 % (sixth pass) and 1.4 % slower (eighth pass).
constexpr int kLongRowWarps = 4;
constexpr int64_t kLongRowCols = 8192, kLongRowLaunchRows = 8192;

__device__ __forceinline__ int dot16(int4 a, int4 b, int sum) {
    sum = __dp4a(a.x, b.x, sum);
    sum = __dp4a(a.y, b.y, sum);
    sum = __dp4a(a.z, b.z, sum);
    return __dp4a(a.w, b.w, sum);
}

__device__ __forceinline__ int4 low_nibbles(int4 q) {
    return {q.x & 0x0f0f0f0f, q.y & 0x0f0f0f0f, q.z & 0x0f0f0f0f, q.w & 0x0f0f0f0f};
}

__device__ __forceinline__ int4 high_nibbles(int4 q) {
    return {(q.x >> 4) & 0x0f0f0f0f, (q.y >> 4) & 0x0f0f0f0f, (q.z >> 4) & 0x0f0f0f0f, (q.w >> 4) & 0x0f0f0f0f};
}

__device__ __forceinline__ int4 load16(const void* p) { return *reinterpret_cast<const int4*>(p); }

// 16 f16 values to 32-byte-aligned memory, two 16-byte stores.
__device__ __forceinline__ void store32(__half* out, const __half (&values)[16]) {
    reinterpret_cast<int4*>(out)[0] = *reinterpret_cast<const int4*>(&values[0]);
    reinterpret_cast<int4*>(out)[1] = *reinterpret_cast<const int4*>(&values[8]);
}

// One warp per block of 32 values.
__global__ void quantize_activations_kernel(const float* __restrict__ x, int64_t blocks, int8_t* __restrict__ values,
                                            float2* __restrict__ block_scales) {
    wait_for_previous_kernel();
    const int64_t block = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    if (block >= blocks) return;
    const int lane = threadIdx.x % kWarp;
    quantize_block(x[block * kActivationBlock + lane], lane, values + block * kActivationBlock, block_scales + block);
}

// The kernels below share one shape: the warp of row `row` walks the row's 16-byte units,
// kLoadsInFlight at a time (all loads first, then the arithmetic), and reduces at the end.
// Units::fetch loads what a unit's products read from the weight (all of it that is not already
// in L1 by then: a load in the arithmetic is a second round trip to memory), and Units::dot adds
// the unit's products with token t's activations.

// Q4_K (144-byte blocks: d, dmin, 12 bytes of scales, 128 of nibbles). Unit u: block u / 8, its
// 16-byte chunk u % 8 of nibbles. Chunk c of pair p = c / 2 holds values 64p + 16(c % 2) + i in
// the low nibbles (sub-block 2p) and 64p + 32 + 16(c % 2) + i in the high (sub-block 2p + 1).
struct Q4KUnits {
    static constexpr int kPerBlock = 8;
    static constexpr int kValuesPerUnit = 32;
    __device__ static const uint8_t* address(const DeviceMatrix& w, const uint8_t* row, int64_t u) {
        return row + (u / kPerBlock) * 144 + 16 + 16 * (u % kPerBlock);
    }
    // The header shares a 32-byte sector with the block's first chunk of quants: by the time dot
    // reads it, it is in L1.
    using Fetched = int4;
    __device__ static Fetched fetch(const DeviceMatrix& w, const uint8_t* row, int64_t u) {
        return load16(address(w, row, u));
    }
    __device__ static float dot(const DeviceMatrix& w, const uint8_t* row, int64_t u, int4 quants,
                                const int8_t* x, const float2* scales) {
        const int64_t block = u / kPerBlock;
        const int chunk = static_cast<int>(u % kPerBlock), pair = chunk / 2, half = chunk % 2;
        // The header (d, dmin, the 12 bytes of scales and mins) in one 16-byte load: byte loads
        // of it were two thirds of the kernel's load instructions.
        const int4 header = load16(row + block * 144);
        const int8_t* xs = x + block * 256 + 64 * pair + 16 * half;
        const int dot_low = dot16(low_nibbles(quants), load16(xs), 0);
        const int dot_high = dot16(high_nibbles(quants), load16(xs + 32), 0);
        int scale_low, min_low, scale_high, min_high;
        const auto b0 = static_cast<uint32_t>(header.y), b4 = static_cast<uint32_t>(header.z),
                   b8 = static_cast<uint32_t>(header.w);
        unpack_scale_min_k4(b0, b4, b8, 2 * pair, scale_low, min_low);
        unpack_scale_min_k4(b0, b4, b8, 2 * pair + 1, scale_high, min_high);
        const float2 s_low = scales[block * 8 + 2 * pair], s_high = scales[block * 8 + 2 * pair + 1];
        const float2 d_dmin = __half22float2(*reinterpret_cast<const __half2*>(&header.x));
        float sum = d_dmin.x * (scale_low * s_low.x * dot_low + scale_high * s_high.x * dot_high);
        // The mins multiply whole sub-blocks' sums: the first half-chunk takes them.
        if (half == 0) sum -= d_dmin.y * (min_low * s_low.y + min_high * s_high.y);
        return sum;
    }
    // The unit's 32 values as f16 into `out` (the row's values): for the prompt GEMMs.
    __device__ static void write_values(const DeviceMatrix& w, const uint8_t* row, int64_t u, __half* out) {
        const int64_t block = u / kPerBlock;
        const int chunk = static_cast<int>(u % kPerBlock), pair = chunk / 2, half = chunk % 2;
        const uint8_t* header = row + block * 144;
        const int4 quants = load16(address(w, row, u));
        const float d = load_half(header), dmin = load_half(header + 2);
        int scale_low, min_low, scale_high, min_high;
        unpack_scale_min_k4(header + 4, 2 * pair, scale_low, min_low);
        unpack_scale_min_k4(header + 4, 2 * pair + 1, scale_high, min_high);
        const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&quants);
        __half* low = out + block * 256 + 64 * pair + 16 * half;
        __half values_low[16], values_high[16];
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            values_low[i] = __float2half_rn(d * scale_low * (bytes[i] & 15) - dmin * min_low);
            values_high[i] = __float2half_rn(d * scale_high * (bytes[i] >> 4) - dmin * min_high);
        }
        store32(low, values_low);
        store32(low + 32, values_high);
    }
};

// Q6_K, split (208-byte bodies: ql[128], qh[64], scales[16]; fp16 d apart). Unit u: block u / 8,
// its 16 bytes of ql at 16(u % 8) = 64h + 32j + l0: low nibbles hold values 128h + 32j + l0 + i
// (k = j), high nibbles values 128h + 32(j + 2) + l0 + i (k = j + 2); their top two bits are bits
// 2k, 2k + 1 of qh[32h + l0 + i].
struct Q6KUnits {
    static constexpr int kPerBlock = 8;
    static constexpr int kValuesPerUnit = 32;
    // Where unit u lies: its block, its chunk of ql (64h + 32j + l0), and the first value of its
    // low nibbles (its high nibbles' are 64 on).
    struct Place {
        int64_t block;
        int chunk, h, j, l0, value_low;
    };
    __device__ static Place place(int64_t u) {
        const int chunk = static_cast<int>(u % kPerBlock);
        const int h = chunk / 4, j = (chunk % 4) / 2, l0 = 16 * (chunk % 2);
        return {u / kPerBlock, chunk, h, j, l0, 128 * h + 32 * j + l0};
    }
    // Everything a unit's products read from the weight, fetched together: the high bits, the
    // two sub-block scales and d lie in sectors no quant load brings in, and fetched in dot they
    // were a second round trip to memory per unit.
    struct Fetched {
        int4 ql, qh;
        int scale_low, scale_high;
        float d;
    };
    __device__ static Fetched fetch(const DeviceMatrix& w, const uint8_t* row, int64_t u) {
        const Place p = place(u);
        const uint8_t* body = row + p.block * 208;
        const auto* sub_scales = reinterpret_cast<const int8_t*>(body + 192);
        return {load16(body + 16 * p.chunk), load16(body + 128 + 32 * p.h + p.l0), sub_scales[p.value_low / 16],
                sub_scales[p.value_low / 16 + 4], load_half(row + w.scales_offset + 2 * p.block)};
    }
    __device__ static float dot(const DeviceMatrix& w, const uint8_t* row, int64_t u, const Fetched& f,
                                const int8_t* x, const float2* scales) {
        const Place p = place(u);
        const int64_t block = p.block;
        const int j = p.j;
        const int4 ql = f.ql, qh = f.qh;
        const int shift_low = 2 * j, shift_high = 2 * (j + 2);
        const int4 low_q = low_nibbles(ql), high_q = high_nibbles(ql);
        const int4 levels_low = {q6_levels(low_q.x, qh.x, shift_low), q6_levels(low_q.y, qh.y, shift_low),
                                 q6_levels(low_q.z, qh.z, shift_low), q6_levels(low_q.w, qh.w, shift_low)};
        const int4 levels_high = {q6_levels(high_q.x, qh.x, shift_high), q6_levels(high_q.y, qh.y, shift_high),
                                  q6_levels(high_q.z, qh.z, shift_high), q6_levels(high_q.w, qh.w, shift_high)};
        const int value_low = p.value_low, value_high = value_low + 64;
        const int8_t* xb = x + block * 256;
        const int dot_low = dot16(levels_low, load16(xb + value_low), 0);
        const int dot_high = dot16(levels_high, load16(xb + value_high), 0);
        const float2 s_low = scales[block * 8 + value_low / 32], s_high = scales[block * 8 + value_high / 32];
        return f.d * (f.scale_low * s_low.x * dot_low + f.scale_high * s_high.x * dot_high);
    }
    __device__ static void write_values(const DeviceMatrix& w, const uint8_t* row, int64_t u, __half* out) {
        const Place p = place(u);
        const int64_t block = p.block;
        const int j = p.j, value_low = p.value_low, value_high = value_low + 64;
        const Fetched f = fetch(w, row, u);
        const uint8_t* low_bytes = reinterpret_cast<const uint8_t*>(&f.ql);
        const uint8_t* high_bytes = reinterpret_cast<const uint8_t*>(&f.qh);
        const float step_low = f.d * f.scale_low, step_high = f.d * f.scale_high;
        __half values_low[16], values_high[16];
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            const int top = high_bytes[i];
            values_low[i] = __float2half_rn(step_low * (((low_bytes[i] & 15) | (((top >> (2 * j)) & 3) << 4)) - 32));
            values_high[i] = __float2half_rn(step_high * (((low_bytes[i] >> 4) | (((top >> (2 * j + 4)) & 3) << 4)) - 32));
        }
        store32(out + block * 256 + value_low, values_low);
        store32(out + block * 256 + value_high, values_high);
    }
};

// Q8_0, split (quants in element order; fp16 d apart). Unit u: values 16u .. 16u + 15.
struct Q80Units {
    static constexpr int kValuesPerUnit = 16;
    __device__ static const uint8_t* address(const DeviceMatrix& w, const uint8_t* row, int64_t u) {
        return row + 16 * u;
    }
    // The block's d (apart, after the row's quants) fetched with its quants: one round trip.
    struct Fetched {
        int4 quants;
        float d;
    };
    __device__ static Fetched fetch(const DeviceMatrix& w, const uint8_t* row, int64_t u) {
        return {load16(address(w, row, u)), load_half(row + w.scales_offset + 2 * (u / 2))};
    }
    __device__ static float dot(const DeviceMatrix& w, const uint8_t* row, int64_t u, const Fetched& f,
                                const int8_t* x, const float2* scales) {
        const int dot = dot16(f.quants, load16(x + 16 * u), 0);
        return f.d * scales[u / 2].x * dot;
    }
    __device__ static void write_values(const DeviceMatrix& w, const uint8_t* row, int64_t u, __half* out) {
        const int4 quants = load16(address(w, row, u));
        const int8_t* q = reinterpret_cast<const int8_t*>(&quants);
        const float d = load_half(row + w.scales_offset + 2 * (u / 2));
        __half values[16];
#pragma unroll
        for (int i = 0; i < 16; ++i) values[i] = __float2half_rn(d * q[i]);
        store32(out + 16 * u, values);
    }
};

// Up to kMaxFusedMatvecs matrices of one type, multiplied by the same activations in one launch
// (a layer's Q, K and V; its gate and up): block b works on the matrix whose range of blocks holds
// it. With `accumulate`, the products are added to what the outputs hold (the residual).
struct MatvecJobs {
    DeviceMatrix w[kMaxFusedMatvecs];
    float* out[kMaxFusedMatvecs];
    int64_t first_block[kMaxFusedMatvecs + 1];
    int count;
    bool accumulate;
};

// This warp's matrix, output and row (shared by kWarpsPerRow warps of the block); false past the
// matrix's last row.
template <int kWarpsPerRow = 1>
__device__ __forceinline__ bool locate(const MatvecJobs& jobs, DeviceMatrix& w, float*& out, int64_t& row) {
    int j = 0;
#pragma unroll
    for (int i = 1; i < kMaxFusedMatvecs; ++i)
        if (i < jobs.count && blockIdx.x >= jobs.first_block[i]) j = i;
    // Selected by value, not indexed: a run-time index into the parameters would go through memory.
    w = j == 0 ? jobs.w[0] : (j == 1 ? jobs.w[1] : jobs.w[2]);
    out = j == 0 ? jobs.out[0] : (j == 1 ? jobs.out[1] : jobs.out[2]);
    row = (static_cast<int64_t>(blockIdx.x) - jobs.first_block[j]) * kRowsPerBlock + threadIdx.y / kWarpsPerRow;
    return row < w.rows;
}

// Each token's sum of the row over the warp's lanes; lane 0 stores it at out[t][row] (or adds it).
template <int kMaxTokens>
__device__ __forceinline__ void store_row(const MatvecJobs& jobs, const float (&sums)[kMaxTokens], int tokens,
                                          int lane, float* out, int64_t rows, int64_t row) {
#pragma unroll
    for (int t = 0; t < kMaxTokens; ++t) {
        const float total = warp_sum(sums[t]);
        if (t < tokens && lane == 0) {
            float* at = out + t * rows + row;
            *at = jobs.accumulate ? *at + total : total;
        }
    }
}

// The same when kWarpsPerRow warps of the block share each row: their sums meet in shared memory
// and the row's first warp adds them, always in the same order. Every warp of the block comes here
// (a barrier), those past the last row with `valid` false.
template <int kWarpsPerRow, int kMaxTokens>
__device__ __forceinline__ void store_shared_row(const MatvecJobs& jobs, const float (&sums)[kMaxTokens], int tokens,
                                                 int lane, int part, bool valid, float* out, int64_t rows, int64_t row) {
    if constexpr (kWarpsPerRow == 1) {
        store_row(jobs, sums, tokens, lane, out, rows, row);
    } else {
        __shared__ float parts[kMaxTokens][kRowsPerBlock * kWarpsPerRow];
#pragma unroll
        for (int t = 0; t < kMaxTokens; ++t) {
            const float total = warp_sum(sums[t]);
            if (lane == 0) parts[t][threadIdx.y] = total;
        }
        __syncthreads();
        if (!valid || part != 0 || lane != 0) return;
#pragma unroll
        for (int t = 0; t < kMaxTokens; ++t) {
            if (t >= tokens) break;
            float total = 0;
#pragma unroll
            for (int p = 0; p < kWarpsPerRow; ++p) total += parts[t][threadIdx.y + p];
            float* at = out + t * rows + row;
            *at = jobs.accumulate ? *at + total : total;
        }
    }
}

template <typename Units, int kMaxTokens, int kWarpsPerRow>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock* kWarpsPerRow)
    matvec_int8_kernel(MatvecJobs jobs, const int8_t* __restrict__ x, const float2* __restrict__ scales, int tokens) {
    wait_for_previous_kernel();
    DeviceMatrix w;
    float* out;
    int64_t row;
    const bool valid = locate<kWarpsPerRow>(jobs, w, out, row);
    if (kWarpsPerRow == 1 && !valid) return;
    const int part = static_cast<int>(threadIdx.y) % kWarpsPerRow;  // of the row's warps
    const int lane = threadIdx.x;
    const uint8_t* row_data = w.data + row * w.row_stride;
    const int64_t units = valid ? w.cols / Units::kValuesPerUnit : 0;
    const int64_t activation_blocks = w.cols / kActivationBlock;
    float sums[kMaxTokens] = {};
    for (int64_t first = lane + part * kWarp * kLoadsInFlight; first < units;
         first += kWarp * kLoadsInFlight * kWarpsPerRow) {
        typename Units::Fetched fetched[kLoadsInFlight];
#pragma unroll
        for (int i = 0; i < kLoadsInFlight; ++i) {
            const int64_t u = first + i * kWarp;
            if (u < units) fetched[i] = Units::fetch(w, row_data, u);
        }
#pragma unroll
        for (int i = 0; i < kLoadsInFlight; ++i) {
            const int64_t u = first + i * kWarp;
            if (u >= units) break;
#pragma unroll
            for (int t = 0; t < kMaxTokens; ++t) {
                if (t < tokens)
                    sums[t] += Units::dot(w, row_data, u, fetched[i], x + t * w.cols, scales + t * activation_blocks);
            }
        }
    }
    store_shared_row<kWarpsPerRow>(jobs, sums, tokens, lane, part, valid, out, w.rows, row);
}

// F16, BF16 and F32 rows read 16 bytes (8, 8 or 4 values) at a time.
template <typename T>
struct FloatUnits;

template <>
struct FloatUnits<__half> {
    static constexpr int kValues = 8;
    __device__ static void expand(int4 q, float* v) {
        const __half2* h = reinterpret_cast<const __half2*>(&q);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = __half22float2(h[i]);
            v[2 * i] = f.x;
            v[2 * i + 1] = f.y;
        }
    }
};

template <>
struct FloatUnits<__nv_bfloat16> {
    static constexpr int kValues = 8;
    __device__ static void expand(int4 q, float* v) {
        const uint32_t words[4] = {static_cast<uint32_t>(q.x), static_cast<uint32_t>(q.y),
                                   static_cast<uint32_t>(q.z), static_cast<uint32_t>(q.w)};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            v[2 * i] = __uint_as_float(words[i] << 16);
            v[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
        }
    }
};

template <>
struct FloatUnits<float> {
    static constexpr int kValues = 4;
    __device__ static void expand(int4 q, float* v) {
        v[0] = __int_as_float(q.x);
        v[1] = __int_as_float(q.y);
        v[2] = __int_as_float(q.z);
        v[3] = __int_as_float(q.w);
    }
};

template <typename T, int kMaxTokens>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock)
    matvec_float_kernel(MatvecJobs jobs, const float* __restrict__ x, int tokens) {
    wait_for_previous_kernel();
    using Units = FloatUnits<T>;
    DeviceMatrix w;
    float* out;
    int64_t row;
    if (!locate(jobs, w, out, row)) return;
    const int lane = threadIdx.x;
    const uint8_t* row_data = w.data + row * w.row_stride;
    const int64_t units = w.cols / Units::kValues;
    float sums[kMaxTokens] = {};
    for (int64_t first = lane; first < units; first += kWarp * kFloatLoadsInFlight) {
        int4 raw[kFloatLoadsInFlight];
#pragma unroll
        for (int i = 0; i < kFloatLoadsInFlight; ++i) {
            const int64_t u = first + i * kWarp;
            if (u < units) raw[i] = load16(row_data + 16 * u);
        }
#pragma unroll
        for (int i = 0; i < kFloatLoadsInFlight; ++i) {
            const int64_t u = first + i * kWarp;
            if (u >= units) break;
            float v[Units::kValues];
            Units::expand(raw[i], v);
#pragma unroll
            for (int t = 0; t < kMaxTokens; ++t) {
                if (t >= tokens) break;
                const float4* xt = reinterpret_cast<const float4*>(x + t * w.cols + u * Units::kValues);
#pragma unroll
                for (int k = 0; k < Units::kValues / 4; ++k) {
                    const float4 a = xt[k];
                    sums[t] += v[4 * k] * a.x + v[4 * k + 1] * a.y + v[4 * k + 2] * a.z + v[4 * k + 3] * a.w;
                }
            }
        }
    }
    store_row(jobs, sums, tokens, lane, out, w.rows, row);
}

// Any type weight_value decodes, one value per lane at a time: slow, for the rarer types.
template <int kMaxTokens>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock)
    matvec_generic_kernel(MatvecJobs jobs, const float* __restrict__ x, int tokens) {
    wait_for_previous_kernel();
    DeviceMatrix w;
    float* out;
    int64_t row;
    if (!locate(jobs, w, out, row)) return;
    const int lane = threadIdx.x;
    float sums[kMaxTokens] = {};
    for (int64_t col = lane; col < w.cols; col += kWarp) {
        const float value = weight_value(w, row, col);
#pragma unroll
        for (int t = 0; t < kMaxTokens; ++t)
            if (t < tokens) sums[t] += value * x[t * w.cols + col];
    }
    store_row(jobs, sums, tokens, lane, out, w.rows, row);
}

__global__ void dequantize_to_f16_kernel(DeviceMatrix w, int64_t first_row, int64_t count, __half* __restrict__ out) {
    wait_for_previous_kernel();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count) return;
    out[i] = __float2half_rn(weight_value(w, first_row + i / w.cols, i % w.cols));
}

// One thread per 16-byte unit of quants: the unit's values, as the int8 kernels read them.
template <typename Units>
__global__ void dequantize_units_to_f16_kernel(DeviceMatrix w, int64_t first_row, int64_t rows,
                                               __half* __restrict__ out) {
    wait_for_previous_kernel();
    const int64_t units_per_row = w.cols / Units::kValuesPerUnit;
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows * units_per_row) return;
    const int64_t r = i / units_per_row, u = i % units_per_row;
    Units::write_values(w, w.data + (first_row + r) * w.row_stride, u, out + r * w.cols);
}

__global__ void convert_to_f16_kernel(const float* __restrict__ x, int64_t count, __half* __restrict__ out) {
    wait_for_previous_kernel();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) out[i] = __float2half_rn(x[i]);
}

__global__ void gather_rows_kernel(DeviceMatrix table, const int32_t* __restrict__ tokens, int64_t count,
                                   float* __restrict__ out) {
    wait_for_previous_kernel();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count * table.cols) return;
    out[i] = weight_value(table, tokens[i / table.cols], i % table.cols);
}

const dim3 kRowBlock(kWarp, kRowsPerBlock);
const dim3 kLongRowBlock(kWarp, kRowsPerBlock * kLongRowWarps);

// How many warps share each row of a launch (kLongRowWarps or 1).
int warps_per_row(const MatvecProduct* products, int count, int64_t tokens) {
    int64_t rows = 0, shortest = products[0].w.cols;
    for (int i = 0; i < count; ++i) {
        rows += products[i].w.rows;
        shortest = std::min(shortest, products[i].w.cols);
    }
    return tokens == 1 && shortest >= kLongRowCols && rows <= kLongRowLaunchRows ? kLongRowWarps : 1;
}

MatvecJobs jobs_of(const MatvecProduct* products, int count, bool accumulate) {
    MatvecJobs jobs{};
    jobs.count = count;
    jobs.accumulate = accumulate;
    int64_t blocks = 0;
    for (int i = 0; i < count; ++i) {
        jobs.w[i] = products[i].w;
        jobs.out[i] = products[i].out;
        jobs.first_block[i] = blocks;
        blocks += (products[i].w.rows + kRowsPerBlock - 1) / kRowsPerBlock;
    }
    jobs.first_block[count] = blocks;
    return jobs;
}

// Whether the 16-byte float kernel can read w.
bool has_16_byte_matvec(const DeviceMatrix& w) {
    const bool aligned = w.row_stride % 16 == 0 && reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
    return aligned && ((w.type == type_id::F16 && w.cols % 8 == 0) || (w.type == type_id::BF16 && w.cols % 8 == 0) ||
                       (w.type == type_id::F32 && w.cols % 4 == 0));
}

dim3 grid_of(const MatvecJobs& jobs) { return dim3(static_cast<unsigned>(jobs.first_block[jobs.count])); }

template <typename Units>
void launch_int8(const MatvecJobs& jobs, int split, const int8_t* x, const float2* scales, int tokens, Stream stream) {
    if (split > 1)
        launch(matvec_int8_kernel<Units, 1, kLongRowWarps>, grid_of(jobs), kLongRowBlock, stream, jobs, x, scales,
               tokens);
    else if (tokens == 1)
        launch(matvec_int8_kernel<Units, 1, 1>, grid_of(jobs), kRowBlock, stream, jobs, x, scales, tokens);
    else
        launch(matvec_int8_kernel<Units, kMaxMatvecTokens, 1>, grid_of(jobs), kRowBlock, stream, jobs, x, scales,
               tokens);
}

template <typename T>
void launch_float(const MatvecJobs& jobs, const float* x, int tokens, Stream stream) {
    if (tokens == 1)
        launch(matvec_float_kernel<T, 1>, grid_of(jobs), kRowBlock, stream, jobs, x, tokens);
    else
        launch(matvec_float_kernel<T, kMaxMatvecTokens>, grid_of(jobs), kRowBlock, stream, jobs, x, tokens);
}

int64_t blocks_for(int64_t threads, int per_block) { return (threads + per_block - 1) / per_block; }

}  // namespace

void quantize_activations(const float* x, int64_t rows, int64_t cols, int8_t* values, float* block_scales,
                          Stream stream) {
    const int64_t blocks = rows * cols / kActivationBlock;
    constexpr int kThreads = 256;
    launch(quantize_activations_kernel, blocks_for(blocks * kWarp, kThreads), kThreads, stream, 
        x, blocks, values, reinterpret_cast<float2*>(block_scales));
}

void matvec_int8(const MatvecProduct* products, int count, const int8_t* values, const float* block_scales,
                 int64_t tokens, bool accumulate, Stream stream) {
    const int split = warps_per_row(products, count, tokens);
    const MatvecJobs jobs = jobs_of(products, count, accumulate);
    const auto* scales = reinterpret_cast<const float2*>(block_scales);
    const int n = static_cast<int>(tokens);
    const uint32_t type = products[0].w.type;
    if (type == type_id::Q4_K) launch_int8<Q4KUnits>(jobs, split, values, scales, n, stream);
    if (type == type_id::Q6_K) launch_int8<Q6KUnits>(jobs, split, values, scales, n, stream);
    if (type == type_id::Q8_0) launch_int8<Q80Units>(jobs, split, values, scales, n, stream);
}

void matvec_f32(const MatvecProduct* products, int count, const float* x, int64_t tokens, bool accumulate,
                Stream stream) {
    const MatvecJobs jobs = jobs_of(products, count, accumulate);
    const int n = static_cast<int>(tokens);
    const DeviceMatrix& w = products[0].w;
    bool fast = true;
    for (int i = 0; i < count; ++i) fast = fast && has_16_byte_matvec(products[i].w);
    if (fast && w.type == type_id::F16) return launch_float<__half>(jobs, x, n, stream);
    if (fast && w.type == type_id::BF16) return launch_float<__nv_bfloat16>(jobs, x, n, stream);
    if (fast && w.type == type_id::F32) return launch_float<float>(jobs, x, n, stream);
    if (n == 1)
        launch(matvec_generic_kernel<1>, grid_of(jobs), kRowBlock, stream, jobs, x, n);
    else
        launch(matvec_generic_kernel<kMaxMatvecTokens>, grid_of(jobs), kRowBlock, stream, jobs, x, n);
}

template <typename Units>
void dequantize_units(const DeviceMatrix& w, int64_t first_row, int64_t rows, uint16_t* out, Stream stream) {
    constexpr int kThreads = 256;
    launch(dequantize_units_to_f16_kernel<Units>, blocks_for(rows * (w.cols / Units::kValuesPerUnit), kThreads),
           kThreads, stream, w, first_row, rows, reinterpret_cast<__half*>(out));
}

void dequantize_to_f16(const DeviceMatrix& w, int64_t first_row, int64_t rows, uint16_t* out, Stream stream) {
    if (w.type == type_id::Q4_K) return dequantize_units<Q4KUnits>(w, first_row, rows, out, stream);
    if (w.type == type_id::Q6_K) return dequantize_units<Q6KUnits>(w, first_row, rows, out, stream);
    if (w.type == type_id::Q8_0) return dequantize_units<Q80Units>(w, first_row, rows, out, stream);
    const int64_t count = rows * w.cols;
    constexpr int kThreads = 256;
    launch(dequantize_to_f16_kernel, blocks_for(count, kThreads), kThreads, stream, w, first_row, count,
                                                                                    reinterpret_cast<__half*>(out));
}

void convert_to_f16(const float* x, int64_t count, uint16_t* out, Stream stream) {
    constexpr int kThreads = 256;
    launch(convert_to_f16_kernel, blocks_for(count, kThreads), kThreads, stream, x, count, reinterpret_cast<__half*>(out));
}

void gather_rows(const DeviceMatrix& table, const int32_t* tokens, int64_t count, float* out, Stream stream) {
    constexpr int kThreads = 256;
    launch(gather_rows_kernel, blocks_for(count * table.cols, kThreads), kThreads, stream, table, tokens, count, out);
}

}  // namespace hearth::cuda
