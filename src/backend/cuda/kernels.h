// The CUDA backend's kernels, as launchers host code calls. This header is plain C++ with no CUDA
// types, so that the backend (C++20, compiled by g++) and the kernels (compiled by nvcc) share it.
// Every launcher enqueues on `stream` and returns at once; errors surface at the backend's check.
#pragma once

#include <cstddef>
#include <cstdint>

struct CUstream_st;

namespace hearth::cuda {

using Stream = CUstream_st*;  // cudaStream_t

// ggml's type ids (quant::Type), as the kernels switch on them.
namespace type_id {
constexpr uint32_t F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14,
                   BF16 = 30;
}

// A weight matrix in device memory. Most types keep the file's layout (row r at data +
// r * row_stride). Q8_0 and Q6_K blocks are 34 and 210 bytes, which no 16-byte load can follow,
// so the backend splits each of their rows at upload: first every block's quants (Q8_0: 32
// bytes; Q6_K: ql, qh and scales, 208 bytes), then every block's fp16 scale d at
// scales_offset, and rows padded to 16 bytes. The bytes read per row stay the file's.
struct DeviceMatrix {
    uint32_t type = 0;
    const uint8_t* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;
    size_t row_stride = 0;
    size_t scales_offset = 0;  // Q8_0 and Q6_K only
};

// Whether a type is uploaded split as above.
inline bool has_split_layout(uint32_t type) { return type == type_id::Q8_0 || type == type_id::Q6_K; }
// Bytes a row takes on the device (split rows are padded to 16 bytes), and where its scales begin.
inline size_t device_row_stride(uint32_t type, size_t file_row_bytes) {
    return has_split_layout(type) ? (file_row_bytes + 15) / 16 * 16 : file_row_bytes;
}
size_t device_scales_offset(uint32_t type, int64_t cols);
// Rewrites `rows` rows of the file's layout into the device layout (host memory to host memory).
void split_rows(uint32_t type, const uint8_t* file_rows, int64_t rows, int64_t cols, size_t file_row_bytes,
                uint8_t* device_rows);
// Whether the kernels can multiply (and dequantize) this type.
bool can_multiply(uint32_t type);

// --- matrix products ---------------------------------------------------------------------------
// At most this many tokens go through the matrix-vector kernels; more go through a GEMM, over
// slabs of weights dequantized to f16 of at most kDequantizedSlabBytes. 128 MB holds an 8B
// layer's largest matrix (117 MB) whole: split in two slabs (2,340 and 1,756 rows), the down projection
// made cuBLAS choose a split-K kernel 2.5x slower than for gate and up.
constexpr int64_t kMaxMatvecTokens = 8;
// From 2 up to kMaxMmaTokens tokens (batched decoding: a row per sequence), weights of the types
// has_int8_mma accepts multiply on int8 tensor cores (matmul_int8_mma) without a dequantized
// copy: already at 2 tokens it beats the matrix-vector kernel, whose time grows with each token
// (H100, Q4_K 4096 x 4096: 6.7 us for 1 token, 11.4 for 2 and 28.5 for 8 against 10.0 to 10.3
// for 2 to 8 on the tensor cores). More tokens (prompts) take the GEMM.
constexpr int64_t kMinMmaTokens = 2;
constexpr int64_t kMaxMmaTokens = 64;
// Which kernel multiplies `tokens` tokens with a weight of `type` (the backend's choice; its
// tests hold each path to its own tolerance).
enum class MatmulPath { MatvecInt8, MatvecFloat, Mma, Gemm };
MatmulPath matmul_path(uint32_t type, int64_t tokens);
constexpr size_t kDequantizedSlabBytes = size_t{128} << 20;

// Activations rounded to int8 in blocks of 32 values, as llama.cpp's q8_1: per block the f32 step d
// and d * (sum of the block's int8 values), two floats.
void quantize_activations(const float* x, int64_t rows, int64_t cols, int8_t* values, float* block_scales,
                          Stream stream);
// Whether a type has an int8 (dp4a) matrix-vector kernel, which reads quantized activations.
bool has_int8_matvec(uint32_t type);
// Matrix-vector products of up to kMaxFusedMatvecs matrices of one type with the same activations,
// in one launch: out_i[t][r] = dot(row r of w_i, x row t), t < tokens <= kMaxMatvecTokens (with
// `accumulate`, added to what out_i holds).
constexpr int kMaxFusedMatvecs = 3;
struct MatvecProduct {
    DeviceMatrix w;
    float* out = nullptr;
};
// From quantized activations (the types has_int8_matvec accepts).
void matvec_int8(const MatvecProduct* products, int count, const int8_t* values, const float* block_scales,
                 int64_t tokens, bool accumulate, Stream stream);
// Whether matmul_int8_mma takes this type.
bool has_int8_mma(uint32_t type);
// out[t][r] = dot(row r of w, token t's activations) (with accumulate: added to what out holds), for
// `tokens` token rows of quantized activations (as quantize_activations writes them), on int8 tensor cores:
// one read of the weights for up to 64 tokens.
void matmul_int8_mma(const DeviceMatrix& w, const int8_t* values, const float* block_scales, int64_t tokens,
                     float* out, bool accumulate, Stream stream);
// The same for up to kMaxFusedMmas matrices of one type and one row length (the same
// activations), in one launch per 64 tokens: a layer's Q, K and V. Only matrices of at most
// kMaxFusedMmaRows rows between them share a launch: small ones gain the launch ramp they save
// (H100, Q4_K Q+K+V at 16 tokens 27.8 -> 18.4 us, at 64 56.3 -> 32.3), while gate and up, large
// enough alone, lose with the one split count a launch has (64 tokens: 119.7 -> 142.4 us).
constexpr int kMaxFusedMmas = 3;
constexpr int64_t kMaxFusedMmaRows = 8192;
void matmul_int8_mma(const MatvecProduct* products, int count, const int8_t* values, const float* block_scales,
                     int64_t tokens, bool accumulate, Stream stream);
// Whether matmul_f16_mma takes this type (Q4_K, Q6_K), and from how many tokens the backend
// prefers it to matmul_int8_mma: from 33 it is the faster for Q4_K (H100, 64 tokens: gate 55.5 ->
// 39.2 us, down 77.1 -> 55.5; 33: gate 41.1 -> 29.8, down 58.1 -> 44.6), up to 24 the slower (down
// 31.4 against 39.4 at 24 tokens): below two token tiles its dequantizing is not shared by enough
// tokens. Q6_K gains at 64 tokens (down 95.2 -> 82.6 us, output 638 -> 560) and is about even at 33
// (down 70.3 -> 74.8, output 487 -> 473), so one threshold serves both (docs/performance.md).
bool has_f16_mma(uint32_t type);
constexpr int64_t kMinF16MmaTokens = 33;
// The products of matmul_int8_mma (up to kMaxFusedMmas matrices, the same activations, one launch
// per 64 tokens) from f16 activations (`tokens` rows of w.cols values), on f16 tensor cores: the
// weights dequantized once per launch, scales and mins applied to them, so that the work per
// token is the mma's alone. Rows of whole 256-value super-blocks.
void matmul_f16_mma(const MatvecProduct* products, int count, const uint16_t* values, int64_t tokens, bool accumulate,
                    Stream stream);
// From f32 activations, for every type can_multiply accepts (F16, BF16 and F32 with 16-byte loads;
// others one value at a time).
void matvec_f32(const MatvecProduct* products, int count, const float* x, int64_t tokens, bool accumulate,
                Stream stream);
// Rows [first_row, first_row + rows) of w as f16, row-major.
void dequantize_to_f16(const DeviceMatrix& w, int64_t first_row, int64_t rows, uint16_t* out, Stream stream);
void convert_to_f16(const float* x, int64_t count, uint16_t* out, Stream stream);
// out row t = row tokens[t] of the table, as f32 (the embedding gather).
void gather_rows(const DeviceMatrix& table, const int32_t* tokens, int64_t count, float* out, Stream stream);

// --- the other ops -----------------------------------------------------------------------------
void rmsnorm(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon, float* out,
             Stream stream);
// Rotates adjacent pairs of the first rotary_dims values of each head of each row by
// freq_scale * position * inverse_frequencies[i] (float64 angles, as the CPU reference).
void rope(float* x, int64_t rows, int64_t cols, const int32_t* positions, int64_t head_dim, int64_t rotary_dims,
          const double* inverse_frequencies, double freq_scale, Stream stream);
void swiglu(float* gate, const float* up, int64_t count, Stream stream);
// Where an op that makes activations also writes them in the form the products after it read:
// rounded to int8 as quantize_activations rounds them (values and block_scales), or as f16 (what
// convert_to_f16 writes), or neither. Each saves a pass over the activations and a launch before
// every product they feed.
struct ActivationCopies {
    int8_t* values = nullptr;
    float* block_scales = nullptr;
    uint16_t* f16 = nullptr;
};
// The same two ops, also writing `copies` (cols, or count, a multiple of 32).
void rmsnorm_copied(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon, float* out,
                    ActivationCopies copies, Stream stream);
void swiglu_copied(float* gate, const float* up, int64_t count, ActivationCopies copies, Stream stream);
void add(float* x, const float* y, int64_t count, Stream stream);
// Per row of x (rows x cols): the column of its largest value (the first of equal ones) and the
// value, NaN for a row holding NaN. Device memory out; `scratch` holds argmax_scratch_bytes(rows).
// A row is cut into up to kArgmaxSlices slices of at least kMinArgmaxSliceCols columns, a block
// each, then their bests are compared.
constexpr int64_t kArgmaxSlices = 32, kMinArgmaxSliceCols = 1024;
constexpr size_t argmax_scratch_bytes(int64_t rows) { return static_cast<size_t>(rows * kArgmaxSlices) * 8; }
void argmax_rows(const float* x, int64_t rows, int64_t cols, void* scratch, int32_t* columns, float* values,
                 Stream stream);
// Per row of x: its k (<= kMaxTopK, <= cols) largest values, first first, and their columns,
// ranked as backend::rank_top_k ranks them. Device memory out, k a row.
constexpr int kMaxTopK = 1024;
void top_k_rows(const float* x, int64_t rows, int64_t cols, int k, int32_t* columns, float* values, Stream stream);

// --- KV cache and attention --------------------------------------------------------------------
// One layer's keys (or values): row (kv_head, position) at base + kv_head * head_stride +
// position * row_bytes, each row head_dim values as F16 or Q8_0 blocks.
struct KvRows {
    uint8_t* base = nullptr;
    size_t head_stride = 0;
    size_t row_bytes = 0;
    uint32_t type = type_id::F16;
};

// Where each row's positions lie in the cache (backend::KvBatch on the device): position p of
// row t is slot p itself when tables is null (one sequence owning the cache in order), else slot
// tables[sequence_of[t] * table_stride + p / kKvBlockPositions] * kKvBlockPositions +
// p % kKvBlockPositions.
constexpr int64_t kKvBlockPositions = 64;  // backend::kKvBlockSize
struct KvPages {
    const int32_t* tables = nullptr;
    const int32_t* sequence_of = nullptr;
    int64_t table_stride = 0;

    // The same for the rows from `first` on (a launch over some of a pass's rows).
    KvPages from_row(int64_t first) const { return {tables, tables ? sequence_of + first : nullptr, table_stride}; }
};

void store_kv(KvRows keys, KvRows values, const float* k, const float* v, int64_t rows, int64_t kv_heads,
              int64_t head_dim, const int32_t* positions, KvPages pages, Stream stream);

// RoPE (as rope()) on the query heads of q in place and on the key heads of k, then stores k and v
// as store_kv: one launch. head_dim is a multiple of 32 (at most 1024).
void rope_and_store_kv(KvRows keys, KvRows values, float* q, float* k, const float* v, int64_t rows, int64_t heads,
                       int64_t kv_heads, int64_t head_dim, int64_t rotary_dims, const int32_t* positions,
                       KvPages pages, const double* inverse_frequencies, double freq_scale, Stream stream);

// Key ranges per (row, head) that attention() splits the keys into: enough blocks to fill a GPU
// when few rows decode, and none shorter than 64 keys in a full cache.
inline int64_t attention_range_count(int64_t rows, int64_t heads, int64_t capacity) {
    constexpr int64_t kTargetBlocks = 1024, kMinKeysPerRange = 64;
    const int64_t blocks = rows * heads > 0 ? rows * heads : 1;
    const int64_t wanted = kTargetBlocks / blocks > 0 ? kTargetBlocks / blocks : 1;
    const int64_t most = capacity > kMinKeysPerRange ? (capacity + kMinKeysPerRange - 1) / kMinKeysPerRange : 1;
    return wanted < most ? wanted : most;
}
// Floats of scratch attention() needs: a partial result (max, sum, head_dim outputs) per range.
constexpr int64_t kAttentionWarpsPerRange = 4;
inline size_t attention_scratch_floats(int64_t rows, int64_t heads, int64_t head_dim, int64_t capacity) {
    return static_cast<size_t>(rows * heads * attention_range_count(rows, heads, capacity) * (head_dim + 2));
}
// Causal grouped-query attention over the cache (row t sees positions 0..positions[t]), split
// over the key length (flash-decoding) and merged. The number of key ranges depends on the rows
// and the cache's capacity only, and each range's length is worked out on the device from the
// positions, so the launch is the same at every step (a recorded CUDA graph replays it).
// out is also written as `copies` asks.
void attention(KvRows keys, KvRows values, const float* q, int64_t rows, int64_t heads, int64_t kv_heads,
               int64_t head_dim, const int32_t* positions, KvPages pages, int64_t capacity, float scale, float* scratch,
               float* out, ActivationCopies copies, Stream stream);

// Prompt attention (more than kMaxMatvecTokens rows) multiplies on cuBLAS's tensor cores: scores
// = Q K^T per head into f32 matrices, their causal softmax as f16 in place, then P V, each a
// batched GEMM over the heads of a pass. These are its kernels; CudaBackend::attention runs the
// products.
// Keys (or values) of positions [0, keys) of every kv head as f16, [kv_head][position][dim]; the
// positions of one sequence, found through its block table `table` (or, when null, slot = position).
void kv_to_f16(KvRows kv, int64_t kv_heads, int64_t head_dim, int64_t keys, const int32_t* table, uint16_t* out,
               Stream stream);
// `matrices` score matrices of rows x keys (row stride `stride` floats, one after another): row r
// keeps keys 0..positions[r], scaled, softmaxed and written over its own first bytes as f16
// (row stride 2 * stride halves); the other keys become 0.
void causal_softmax_to_f16(float* scores, int64_t matrices, int64_t rows, int64_t keys, int64_t stride,
                           const int32_t* positions, float scale, Stream stream);
// Pointers for the batched GEMMs of one prompt attention pass over query heads [first_head,
// first_head + count): head h reads kv head h / group. Six arrays of `count`, one after another:
// K, Q and score matrices for the scores; V, probabilities and outputs for P V.
void prompt_attention_pointers(const uint16_t* k16, const uint16_t* v16, int64_t kv_head_stride, const uint16_t* q16,
                               float* scores, int64_t score_matrix_floats, float* out, int64_t head_dim,
                               int64_t first_head, int64_t count, int64_t group, void** pointers, Stream stream);
// The score matrices of one prompt attention pass: as many query heads as fit kPromptScoreBytes,
// at least one.
constexpr size_t kPromptScoreBytes = size_t{256} << 20;
inline int64_t prompt_score_stride(int64_t keys) { return (keys + 7) / 8 * 8; }
inline int64_t prompt_heads_per_pass(int64_t rows, int64_t heads, int64_t keys) {
    const int64_t per_head = rows * prompt_score_stride(keys) * 4;
    const int64_t fit = static_cast<int64_t>(kPromptScoreBytes) / (per_head > 0 ? per_head : 1);
    return fit < 1 ? 1 : (fit < heads ? fit : heads);
}
inline size_t prompt_attention_scratch_bytes(int64_t rows, int64_t heads, int64_t keys) {
    return static_cast<size_t>(prompt_heads_per_pass(rows, heads, keys) * rows * prompt_score_stride(keys) * 4);
}

// --- measuring ---------------------------------------------------------------------------------
// Sums `bytes` of device memory (16-byte loads, every SM busy) into *sink: a read-bandwidth probe.
void read_all(const uint8_t* data, size_t bytes, float* sink, Stream stream);

}  // namespace hearth::cuda
