// Matrix products against weights in their GGUF block formats, the op that decides CPU speed.
// Decoding reads every weight once per token, so a matmul must stream the blocks as they lie in
// the file (no dequantized copy) at memory speed; prompt processing reuses each block across
// many tokens and is bounded by arithmetic instead.
//
// The method (as llama.cpp's, with our own kernels): each token's activation row is prepared
// once for the weight type (quantized to Q8_K for the K-quants, to 32-value int8 blocks for
// the 32-block types, kept f32 for float weights), then every weight row is dotted with it in
// integer arithmetic on the blocks. The ISA (scalar, AVX2, AVX-512 with VNNI when present) is
// chosen at run time; tests force each one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "backend/cpu/thread_pool.h"
#include "quant/types.h"

namespace hearth::cpu {

// Instruction sets a kernel may be written for. Avx512 means F+BW+DQ+VL; its kernels use VNNI
// when the CPU has it (cpu_features().avx512_vnni) and plain AVX-512 otherwise.
enum class Isa { Scalar, Avx2, Avx512 };

std::string_view isa_name(Isa isa);
// The widest ISA this CPU supports.
Isa best_isa();
// Every ISA this CPU can run (Scalar first), for tests that compare them all.
std::vector<Isa> supported_isas();

// How a weight matrix lies in memory. InFile: as in the GGUF file. Repacked: rewritten once at
// load time into the layout of this CPU's fastest kernel for the type (repack_weights below).
enum class WeightLayout { InFile, Repacked };

// A weight matrix: `rows` rows of `cols` values of `type`, each row `row_bytes` long in the file
// (rows contiguous there). y = W x means y[r] = dot(row r, x).
struct WeightMatrix {
    quant::Type type = quant::Type::F32;
    const uint8_t* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;
    size_t row_bytes = 0;
    WeightLayout layout = WeightLayout::InFile;
};

// Rows are repacked in groups of this many (the lanes of one vector); a repacked matrix's row
// ranges (matmul_prepared) start at multiples of it.
inline constexpr int64_t kRepackRows = 16;

// Bytes the repacked form of w takes for `isa`, or 0 where its type has no repacked kernel there
// (today: Q4_K and Q6_K with AVX-512 VNNI).
size_t repacked_bytes(const WeightMatrix& w, Isa isa = best_isa());
// Writes groups [group_begin, group_end) of kRepackRows rows of w (in the file layout) to
// `repacked` (repacked_bytes(w) bytes, 64-byte aligned), each group at its own offset, so that
// threads may repack disjoint ranges at once. The result is w with layout Repacked and data
// `repacked`.
void repack_weights(const WeightMatrix& w, int64_t group_begin, int64_t group_end, uint8_t* repacked,
                    Isa isa = best_isa());

// Whether matmul supports this weight type (every type quant::can_dequantize supports). Only
// F32, F16, BF16 and the quantized types with a row length that is a whole number of blocks.
bool can_matmul(quant::Type type);

// Bytes of one activation row of `cols` values prepared for `weight_type`.
size_t prepared_row_bytes(quant::Type weight_type, int64_t cols, Isa isa = best_isa());

// Prepares `tokens` activation rows x[t * cols + i] for weight_type into `prepared`
// (tokens * prepared_row_bytes bytes).
void prepare_activations(quant::Type weight_type, const float* x, int64_t tokens, int64_t cols,
                         uint8_t* prepared, Isa isa = best_isa());

// The kernel on prepared activations: y[t * y_stride + r] for weight rows r in
// [row_begin, row_end) and tokens t in [0, tokens). Each y element is bit-identical whatever
// [row_begin, row_end) is (for a repacked matrix, ranges start at multiples of kRepackRows), and
// whatever `tokens` is from two tokens up, so results do not depend on how rows are split across
// threads. A single token may take a decode kernel with its own summation order (see
// MatmulKernel::rows); the repacked kernels give it its batch bits.
void matmul_prepared(const WeightMatrix& w, const uint8_t* prepared, int64_t tokens, int64_t row_begin,
                     int64_t row_end, float* y, int64_t y_stride, Isa isa = best_isa());

// y[t * w.rows + r] = dot(W row r, x row t) for all rows and tokens: prepares the activations
// (into `scratch`, grown as needed) and splits weight rows across the pool's threads. Results are
// bit-identical for any thread count.
void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t tokens, float* y,
            std::vector<uint8_t>& scratch, Isa isa = best_isa());

// The scalar reference: each weight row dequantized with quant::dequantize_row (bit-exact with
// llama.cpp), dotted with the f32 activations in double. Tests hold every kernel against it.
void matmul_reference(const WeightMatrix& w, const float* x, int64_t tokens, float* y);

}  // namespace hearth::cpu
