// The K-quant matmul kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) on every ISA this CPU runs,
// through the public API, against matmul_reference.
//
// Tolerances. The kernels quantize each activation row to Q8_K, then compute exactly in
// integers; only the f32 application of the super-block scales rounds. So:
//  - against the reference on the Q8_K-dequantized activations x' the error is f32 rounding
//    only: |y - ref(x')| <= 1e-5 * sum_i |w_i x'_i| (a few dozen roundings of 2^-24 each at
//    most). A single swapped nibble in a 4096-long row moves y by about |w x| ~ sum/4096, far
//    above that; the negative test checks that it is caught.
//  - against the reference on the f32 activations the Q8_K rounding adds at most half a step
//    per value: |x_i - x'_i| <= max|x in its block| / 254, so
//    |y - ref(x)| <= sum_i |w_i| * step_i / 2 + the f32 term.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/matmul_k_quants.h"
#include "backend/cpu/matmul_kernels.h"
#include "backend/cpu/thread_pool.h"
#include "common/cpu_features.h"
#include "common/error.h"
#include "quant/q8_k.h"
#include "quant/quant.h"
#include "quant/types.h"

namespace hearth::cpu {

namespace detail::k_quants {
// matmul_k_quants_avx512.cpp: the AVX-512 kernel with or without VNNI, whatever this CPU has.
const MatmulKernel* find_avx512_kernel(quant::Type type, bool vnni);
}  // namespace detail::k_quants

namespace {

using quant::Type;

constexpr Type kTypes[] = {Type::Q4_K, Type::Q6_K, Type::Q5_K, Type::Q3_K, Type::Q2_K, Type::IQ4_XS};
constexpr int64_t kBlockElems = 256;
constexpr float kF32Tolerance = 1e-5f;

struct Shape {
    int64_t rows;
    int64_t cols;
    int64_t tokens;
};

// Small enough to run in seconds under ASan; 513 tokens covers many full tiles plus a tail.
constexpr Shape kShapes[] = {{1, 256, 1},  {7, 512, 3},   {33, 256, 5}, {33, 4096, 4},
                             {16, 512, 9}, {256, 256, 1}, {3, 256, 513}};

std::string describe(Type type, Isa isa, const Shape& s) {
    return std::string(quant::type_name(type)) + " " + std::string(isa_name(isa)) + " rows " +
           std::to_string(s.rows) + " cols " + std::to_string(s.cols) + " tokens " + std::to_string(s.tokens);
}

// Gaussian values with a scale that varies by row, so super-block scales differ.
std::vector<float> random_values(int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> row_scale(0.1f, 3.0f);
    std::vector<float> values(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
        const float scale = row_scale(rng);
        for (int64_t i = 0; i < cols; ++i) values[r * cols + i] = scale * normal(rng);
    }
    return values;
}

struct Weights {
    std::vector<uint8_t> bytes;
    WeightMatrix matrix;
};

Weights quantized_weights(Type type, int64_t rows, int64_t cols, uint32_t seed) {
    const std::vector<float> values = random_values(rows, cols, seed);
    Weights w;
    const size_t row_bytes = *quant::row_bytes(type, cols);
    w.bytes.resize(rows * row_bytes);
    for (int64_t r = 0; r < rows; ++r)
        quant::quantize_row(type, values.data() + r * cols, w.bytes.data() + r * row_bytes, cols);
    w.matrix = {type, w.bytes.data(), rows, cols, row_bytes};
    return w;
}

// Activations with one all-zero block (a Q8_K block with d = 0) in the first token.
std::vector<float> activations(int64_t tokens, int64_t cols, uint32_t seed) {
    std::vector<float> x = random_values(tokens, cols, seed);
    std::fill(x.begin(), x.begin() + kBlockElems, 0.0f);
    return x;
}

// x after the Q8_K round trip the kernels see.
std::vector<float> q8_k_round_trip(const std::vector<float>& x, int64_t tokens, int64_t cols) {
    std::vector<quant::BlockQ8K> blocks(cols / kBlockElems);
    std::vector<float> out(x.size());
    for (int64_t t = 0; t < tokens; ++t) {
        quant::quantize_row_q8_k(x.data() + t * cols, blocks.data(), cols);
        quant::dequantize_row_q8_k(blocks.data(), out.data() + t * cols, cols);
    }
    return out;
}

std::vector<float> dequantized(const WeightMatrix& w) {
    std::vector<float> rows(w.rows * w.cols);
    for (int64_t r = 0; r < w.rows; ++r)
        quant::dequantize_row(w.type, w.data + r * w.row_bytes, rows.data() + r * w.cols, w.cols);
    return rows;
}

// Allowed |y - reference| per output element: f32 rounding of sum |w x|, plus, when
// `with_q8_rounding`, half a Q8_K step per activation value.
std::vector<double> tolerances(const WeightMatrix& w, const std::vector<float>& x, int64_t tokens,
                               bool with_q8_rounding) {
    const std::vector<float> weights = dequantized(w);
    std::vector<double> tol(tokens * w.rows);
    for (int64_t t = 0; t < tokens; ++t) {
        const float* xt = x.data() + t * w.cols;
        for (int64_t r = 0; r < w.rows; ++r) {
            const float* wr = weights.data() + r * w.cols;
            double abs_products = 0, rounding = 0;
            for (int64_t b = 0; b < w.cols / kBlockElems; ++b) {
                double max_abs = 0, abs_weights = 0;
                for (int64_t i = b * kBlockElems; i < (b + 1) * kBlockElems; ++i) {
                    max_abs = std::max(max_abs, std::fabs(double{xt[i]}));
                    abs_weights += std::fabs(double{wr[i]});
                    abs_products += std::fabs(double{wr[i]} * xt[i]);
                }
                rounding += abs_weights * max_abs / 254.0;
            }
            tol[t * w.rows + r] = kF32Tolerance * (abs_products + (with_q8_rounding ? rounding : 0.0)) +
                                  (with_q8_rounding ? 1.0001 * rounding : 0.0) + 1e-30;
        }
    }
    return tol;
}

std::vector<float> poisoned(size_t n) {
    return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

std::vector<float> run_matmul(ThreadPool& pool, const WeightMatrix& w, const std::vector<float>& x,
                              int64_t tokens, Isa isa) {
    std::vector<float> y = poisoned(tokens * w.rows);
    std::vector<uint8_t> scratch;
    matmul(pool, w, x.data(), tokens, y.data(), scratch, isa);
    return y;
}

// Index of the first element outside its tolerance, or -1.
int64_t first_outside(const std::vector<float>& y, const std::vector<float>& reference,
                      const std::vector<double>& tol) {
    for (size_t i = 0; i < y.size(); ++i) {
        if (!(std::fabs(double{y[i]} - reference[i]) <= tol[i])) return static_cast<int64_t>(i);
    }
    return -1;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The AVX2 Q8_K quantization writes the reference's bytes: scale, quants and sums, on random
// blocks and on the cases where an order or a rounding could differ: the largest magnitude
// twice with both signs (the first one sets the sign of the scale), quants that land exactly on
// .5 (ties to even), an all-zero block, a block of one value.
TEST(KQuantMatmul, Avx2Q8KQuantizationWritesTheReferenceBytes) {
    if (!cpu_features().avx2) GTEST_SKIP() << "no AVX2 here";
    constexpr int64_t kBlocks = 64;
    constexpr int64_t kCols = kBlocks * quant::BlockQ8K::kElems;
    std::mt19937 generator(300);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(kCols);
    for (float& v : x) v = normal(generator);
    float* tie = x.data() + 256 * 1;  // -3 first, then +3
    tie[10] = -3.0f;
    tie[200] = 3.0f;
    float* halves = x.data() + 256 * 2;  // largest 127: every integer + 0.5 is a tie
    for (int j = 0; j < 256; ++j) halves[j] = static_cast<float>(j % 255 - 127) + (j % 2 ? 0.5f : 0.0f);
    halves[0] = -127.0f;
    std::fill_n(x.data() + 256 * 3, 256, 0.0f);
    std::fill_n(x.data() + 256 * 4, 256, 0.25f);
    std::vector<uint8_t> reference(kBlocks * sizeof(quant::BlockQ8K));
    quant::quantize_row_q8_k(x.data(), reinterpret_cast<quant::BlockQ8K*>(reference.data()), kCols);
    std::vector<uint8_t> simd(reference.size(), 0xA5);
    detail::k_quants::quantize_row_to_q8_k_avx2(x.data(), kCols, simd.data());
    EXPECT_EQ(simd, reference);
}

TEST(KQuantMatmul, EveryTypeHasAKernelForEveryIsa) {
    // No silent fall-back to a narrower ISA or to the generic kernel (which would prepare f32
    // rows, 1024 bytes per 256 values, where a K-quant kernel prepares one Q8_K block, and the
    // SIMD Q4_K/Q5_K kernels 8 floats of min sums beside it).
    for (Type type : kTypes) {
        for (Isa isa : supported_isas()) {
            EXPECT_NE(detail::find_k_quant_kernel(type, isa), nullptr)
                << quant::type_name(type) << " " << isa_name(isa);
            const bool min_sums = isa != Isa::Scalar && (type == Type::Q4_K || type == Type::Q5_K);
            EXPECT_EQ(prepared_row_bytes(type, 512, isa), 2 * (sizeof(quant::BlockQ8K) + (min_sums ? 32 : 0)))
                << quant::type_name(type) << " " << isa_name(isa);
        }
    }
}

TEST(KQuantMatmul, MatchesReferenceAndThreadCountDoesNotChangeBits) {
    ThreadPool one(1), three(3);
    uint32_t seed = 1;
    for (Type type : kTypes) {
        for (const Shape& s : kShapes) {
            const Weights w = quantized_weights(type, s.rows, s.cols, seed++);
            const std::vector<float> x = activations(s.tokens, s.cols, seed++);
            const std::vector<float> x_q8 = q8_k_round_trip(x, s.tokens, s.cols);
            std::vector<float> reference(s.tokens * s.rows), reference_q8(s.tokens * s.rows);
            matmul_reference(w.matrix, x.data(), s.tokens, reference.data());
            matmul_reference(w.matrix, x_q8.data(), s.tokens, reference_q8.data());
            const std::vector<double> tol = tolerances(w.matrix, x, s.tokens, true);
            const std::vector<double> tol_q8 = tolerances(w.matrix, x_q8, s.tokens, false);
            for (Isa isa : supported_isas()) {
                SCOPED_TRACE(describe(type, isa, s));
                const std::vector<float> y = run_matmul(one, w.matrix, x, s.tokens, isa);
                const int64_t bad_q8 = first_outside(y, reference_q8, tol_q8);
                EXPECT_EQ(bad_q8, -1) << "y " << y[std::max<int64_t>(bad_q8, 0)] << " reference "
                                      << reference_q8[std::max<int64_t>(bad_q8, 0)];
                EXPECT_EQ(first_outside(y, reference, tol), -1);
                EXPECT_TRUE(bit_identical(y, run_matmul(three, w.matrix, x, s.tokens, isa)));
            }
        }
    }
}

TEST(KQuantMatmul, TilingAndRowSplitsDoNotChangeBits) {
    // 13 tokens: full tiles of 8 and 4 plus tails; row ranges that start and end anywhere (the
    // AVX-512 VNNI prompt kernel takes 16 rows at a time). From two tokens up, a token's bits do
    // not depend on the call it comes in; a token alone takes the decode kernel, whose bits do
    // not depend on the row range either.
    constexpr Shape kShape{37, 512, 13};
    const int64_t row_splits[] = {0, 1, 2, 9, 20, 21, 37};
    const int64_t token_splits[] = {0, 2, 5, 13};
    uint32_t seed = 100;
    for (Type type : kTypes) {
        const Weights w = quantized_weights(type, kShape.rows, kShape.cols, seed++);
        const std::vector<float> x = activations(kShape.tokens, kShape.cols, seed++);
        for (Isa isa : supported_isas()) {
            SCOPED_TRACE(describe(type, isa, kShape));
            const size_t stride = prepared_row_bytes(type, kShape.cols, isa);
            std::vector<uint8_t> prepared(stride * kShape.tokens);
            prepare_activations(type, x.data(), kShape.tokens, kShape.cols, prepared.data(), isa);
            const auto run = [&](int64_t token_begin, int64_t token_end, int64_t row_begin, int64_t row_end,
                                 std::vector<float>& y) {
                matmul_prepared(w.matrix, prepared.data() + token_begin * stride, token_end - token_begin,
                                row_begin, row_end, y.data() + token_begin * kShape.rows, kShape.rows, isa);
            };
            std::vector<float> all = poisoned(kShape.tokens * kShape.rows);
            run(0, kShape.tokens, 0, kShape.rows, all);
            std::vector<float> pieces = poisoned(all.size());
            for (size_t t = 0; t + 1 < std::size(token_splits); ++t) {
                for (size_t i = 0; i + 1 < std::size(row_splits); ++i)
                    run(token_splits[t], token_splits[t + 1], row_splits[i], row_splits[i + 1], pieces);
            }
            EXPECT_TRUE(bit_identical(all, pieces));

            std::vector<float> decoded = poisoned(all.size()), decoded_pieces = poisoned(all.size());
            for (int64_t t = 0; t < kShape.tokens; ++t) {
                run(t, t + 1, 0, kShape.rows, decoded);
                for (size_t i = 0; i + 1 < std::size(row_splits); ++i)
                    run(t, t + 1, row_splits[i], row_splits[i + 1], decoded_pieces);
            }
            EXPECT_TRUE(bit_identical(decoded, decoded_pieces));
        }
    }
}

TEST(KQuantMatmul, IsaKernelsAgreeWithScalarIntegerKernel) {
    // Same integers, so only the order of the f32 scale applications differs.
    constexpr Shape kShape{19, 4096, 5};
    ThreadPool pool(1);
    uint32_t seed = 200;
    for (Type type : kTypes) {
        const Weights w = quantized_weights(type, kShape.rows, kShape.cols, seed++);
        const std::vector<float> x = activations(kShape.tokens, kShape.cols, seed++);
        const std::vector<float> scalar = run_matmul(pool, w.matrix, x, kShape.tokens, Isa::Scalar);
        const std::vector<double> tol =
            tolerances(w.matrix, q8_k_round_trip(x, kShape.tokens, kShape.cols), kShape.tokens, false);
        for (Isa isa : supported_isas()) {
            SCOPED_TRACE(describe(type, isa, kShape));
            EXPECT_EQ(first_outside(run_matmul(pool, w.matrix, x, kShape.tokens, isa), scalar, tol), -1);
        }
    }
}

TEST(KQuantMatmul, Avx512WithAndWithoutVnniGiveIdenticalBitsOrAgreeWithTheReference) {
    // Row at a time, vpdpwssd and vpmaddwd + vpaddd compute the same exact integers and the rest
    // is shared: identical bits. The VNNI prompt kernels of Q4_K and Q5_K (16 rows in the lanes)
    // sums in another f32 order, so there both are held to the integer kernel's tolerance. Run
    // directly, so that the path this CPU does not pick is tested too.
    if (best_isa() != Isa::Avx512) GTEST_SKIP() << "no AVX-512 here";
    uint32_t seed = 400;
    for (const Shape& shape : {Shape{21, 512, 1}, Shape{21, 512, 7}}) {
        for (Type type : kTypes) {
            SCOPED_TRACE(describe(type, Isa::Avx512, shape));
            const Weights w = quantized_weights(type, shape.rows, shape.cols, seed++);
            const std::vector<float> x = activations(shape.tokens, shape.cols, seed++);
            const detail::MatmulKernel* with = detail::k_quants::find_avx512_kernel(type, true);
            const detail::MatmulKernel* without = detail::k_quants::find_avx512_kernel(type, false);
            ASSERT_NE(with, nullptr);
            ASSERT_NE(without, nullptr);
            const size_t stride = with->prepared_row_bytes(shape.cols);
            ASSERT_EQ(stride, without->prepared_row_bytes(shape.cols));
            std::vector<uint8_t> prepared(stride * shape.tokens);
            for (int64_t t = 0; t < shape.tokens; ++t)
                with->prepare_row(x.data() + t * shape.cols, shape.cols, prepared.data() + t * stride);
            std::vector<float> y_with = poisoned(shape.tokens * shape.rows), y_without = y_with;
            with->rows(w.matrix, prepared.data(), stride, shape.tokens, 0, shape.rows, y_with.data(),
                       shape.rows);
            without->rows(w.matrix, prepared.data(), stride, shape.tokens, 0, shape.rows, y_without.data(),
                          shape.rows);
            const bool lanes = shape.tokens >= 2 && (type == Type::Q4_K || type == Type::Q5_K);
            if (!lanes) {
                EXPECT_TRUE(bit_identical(y_with, y_without));
                continue;
            }
            const std::vector<float> x_q8 = q8_k_round_trip(x, shape.tokens, shape.cols);
            std::vector<float> reference(shape.tokens * shape.rows);
            matmul_reference(w.matrix, x_q8.data(), shape.tokens, reference.data());
            const std::vector<double> tol = tolerances(w.matrix, x_q8, shape.tokens, false);
            EXPECT_EQ(first_outside(y_with, reference, tol), -1);
            EXPECT_EQ(first_outside(y_without, reference, tol), -1);
        }
    }
}

// Q4_K and Q6_K repacked at load time (AVX-512 VNNI): 16 rows in the lanes of a vector, for
// decoding and prompts. Against the reference on the Q8_K-rounded activations (exact integers, so the f32
// accumulation tolerance alone), for row counts that leave a partial group of 16; a token alone
// gives the bits it has in any batch; thread counts and 16-row ranges do not change bits.
struct RepackedWeights {
    struct alignas(64) Line {
        uint8_t bytes[64];
    };
    std::vector<Line> lines;  // 64-byte aligned, as the layout needs
    size_t size = 0;
    WeightMatrix matrix;
};

RepackedWeights repacked(const WeightMatrix& w) {
    RepackedWeights r;
    r.size = repacked_bytes(w);
    r.lines.resize((r.size + 63) / 64);
    auto* data = reinterpret_cast<uint8_t*>(r.lines.data());
    std::fill_n(data, r.size, uint8_t{0xa5});  // poison: every byte must be written
    repack_weights(w, 0, (w.rows + kRepackRows - 1) / kRepackRows, data);
    r.matrix = w;
    r.matrix.data = data;
    r.matrix.layout = WeightLayout::Repacked;
    return r;
}

bool has_repacked_layouts() {
    return best_isa() == Isa::Avx512 && cpu_features().avx512_vnni;
}

constexpr Type kRepackedTypes[] = {Type::Q4_K, Type::Q6_K};

// Bytes of 16 rows of one super-block, repacked.
size_t repacked_group_block_bytes(Type type) {
    return type == Type::Q4_K ? 2368 : 3392;
}

TEST(KQuantMatmul, RepackedMatchesReferenceAndDecodesWithTheBitsOfABatch) {
    if (!has_repacked_layouts()) GTEST_SKIP() << "no AVX-512 VNNI here";
    ThreadPool one(1), three(3);
    uint32_t seed = 500;
    for (const Type type : kRepackedTypes)
        for (const Shape& s : {Shape{1, 256, 1}, Shape{16, 512, 2}, Shape{33, 256, 7}, Shape{37, 4096, 13},
                               Shape{64, 512, 513}}) {
            SCOPED_TRACE(describe(type, Isa::Avx512, s));
            const Weights w = quantized_weights(type, s.rows, s.cols, seed++);
            const RepackedWeights r = repacked(w.matrix);
            ASSERT_EQ(r.size, (s.rows + 15) / 16 * (s.cols / 256) * repacked_group_block_bytes(type));
            const std::vector<float> x = activations(s.tokens, s.cols, seed++);
            const std::vector<float> x_q8 = q8_k_round_trip(x, s.tokens, s.cols);
            std::vector<float> reference(s.tokens * s.rows);
            matmul_reference(w.matrix, x_q8.data(), s.tokens, reference.data());
            const std::vector<float> y = run_matmul(one, r.matrix, x, s.tokens, Isa::Avx512);
            EXPECT_EQ(first_outside(y, reference, tolerances(w.matrix, x_q8, s.tokens, false)), -1);
            EXPECT_TRUE(bit_identical(y, run_matmul(three, r.matrix, x, s.tokens, Isa::Avx512)));
            for (const int64_t t : {int64_t{0}, s.tokens - 1}) {
                const std::vector<float> token(x.begin() + t * s.cols, x.begin() + (t + 1) * s.cols);
                const std::vector<float> alone = run_matmul(one, r.matrix, token, 1, Isa::Avx512);
                EXPECT_EQ(std::memcmp(alone.data(), y.data() + t * s.rows, s.rows * sizeof(float)), 0)
                    << "token " << t;
            }
        }
}

TEST(KQuantMatmul, RepackedRowRangesOfWholeGroupsGiveTheBitsOfTheWholeMatrix) {
    if (!has_repacked_layouts()) GTEST_SKIP() << "no AVX-512 VNNI here";
    constexpr Shape kShape{70, 512, 9};
    for (const Type type : kRepackedTypes) {
        SCOPED_TRACE(quant::type_name(type));
        const Weights w = quantized_weights(type, kShape.rows, kShape.cols, 600);
        const RepackedWeights r = repacked(w.matrix);
        const std::vector<float> x = activations(kShape.tokens, kShape.cols, 601);
        const detail::MatmulKernel& kernel =
            type == Type::Q4_K ? detail::k_quants::kRepackedQ4KKernel : detail::k_quants::kRepackedQ6KKernel;
        const size_t stride = kernel.prepared_row_bytes(kShape.cols);
        std::vector<uint8_t> prepared(stride * kShape.tokens);
        for (int64_t t = 0; t < kShape.tokens; ++t)
            kernel.prepare_row(x.data() + t * kShape.cols, kShape.cols, prepared.data() + t * stride);
        std::vector<float> whole = poisoned(kShape.tokens * kShape.rows), pieces = whole;
        matmul_prepared(r.matrix, prepared.data(), kShape.tokens, 0, kShape.rows, whole.data(), kShape.rows);
        const int64_t cuts[] = {0, 16, 48, 64, 70};
        for (size_t i = 0; i + 1 < std::size(cuts); ++i)
            matmul_prepared(r.matrix, prepared.data(), kShape.tokens, cuts[i], cuts[i + 1], pieces.data(),
                            kShape.rows);
        EXPECT_TRUE(bit_identical(whole, pieces));
        EXPECT_EQ(std::count_if(whole.begin(), whole.end(), [](float v) { return std::isnan(v); }), 0);
    }
}

TEST(KQuantMatmul, CpuBackendMatmulsOnTheCopyLoadWeightsMade) {
    if (!has_repacked_layouts()) GTEST_SKIP() << "no AVX-512 VNNI here";
    constexpr Shape kShape{37, 512, 3};
    const Weights w = quantized_weights(Type::Q4_K, kShape.rows, kShape.cols, 800);
    const backend::Weight weight{"w",         Type::Q4_K,  w.matrix.data,
                                 kShape.rows, kShape.cols, w.matrix.row_bytes};
    const std::vector<float> x = activations(kShape.tokens, kShape.cols, 801);
    CpuBackend cpu(2);
    const backend::Activations in = cpu.allocate(kShape.tokens, kShape.cols),
                               out = cpu.allocate(kShape.tokens, kShape.rows);
    std::copy(x.begin(), x.end(), in.data);
    EXPECT_EQ(cpu.matmul_bytes(weight), kShape.rows * w.matrix.row_bytes);
    const backend::Weight* weights[] = {&weight, &weight};  // a tied weight comes twice
    EXPECT_EQ(cpu.load_weights(weights), std::vector<const backend::Weight*>{&weight});
    EXPECT_EQ(cpu.repacked_bytes(), repacked_bytes(w.matrix));
    EXPECT_EQ(cpu.matmul_bytes(weight), repacked_bytes(w.matrix));  // what decoding reads
    cpu.matmul(weight, in, out);
    ThreadPool pool(1);
    const std::vector<float> on_copy =
        run_matmul(pool, repacked(w.matrix).matrix, x, kShape.tokens, Isa::Avx512);
    EXPECT_EQ(std::memcmp(out.data, on_copy.data(), on_copy.size() * sizeof(float)), 0);
}

TEST(KQuantMatmul, OnlyQ4KAndQ6KHaveARepackedLayout) {
    for (Type type : kTypes) {
        const Weights w = quantized_weights(type, 16, 256, 700);
        const bool expected = (type == Type::Q4_K || type == Type::Q6_K) && has_repacked_layouts();
        EXPECT_EQ(repacked_bytes(w.matrix) > 0, expected) << quant::type_name(type);
        if (!expected) {
            std::vector<uint8_t> out(4096);
            EXPECT_THROW(repack_weights(w.matrix, 0, 1, out.data()), Error) << quant::type_name(type);
        }
    }
}

TEST(KQuantMatmul, ToleranceCatchesASwappedNibbleAWrongScaleAndAWrongRow) {
    // The check above must fail for the bugs a kernel could have: here the reference is computed
    // on corrupted copies of the weights, and the correct kernel result must then fall outside.
    constexpr Shape kShape{4, 4096, 2};
    ThreadPool pool(1);
    const Weights w = quantized_weights(Type::Q4_K, kShape.rows, kShape.cols, 300);
    const std::vector<float> x = activations(kShape.tokens, kShape.cols, 301);
    const std::vector<float> x_q8 = q8_k_round_trip(x, kShape.tokens, kShape.cols);
    const std::vector<double> tol = tolerances(w.matrix, x_q8, kShape.tokens, false);
    const auto reference_of = [&](const std::vector<uint8_t>& bytes) {
        WeightMatrix corrupted = w.matrix;
        corrupted.data = bytes.data();
        std::vector<float> y(kShape.tokens * kShape.rows);
        matmul_reference(corrupted, x_q8.data(), kShape.tokens, y.data());
        return y;
    };
    const auto corrupted_rows_caught = [&](const std::vector<float>& y, const std::vector<float>& reference) {
        int caught = 0;
        for (int64_t r = 0; r < kShape.rows; ++r)
            caught += !(std::fabs(double{y[r]} - reference[r]) <= tol[r]);
        return caught;
    };
    constexpr size_t kScalesOffset = 4;  // Q4_K block: fp16 d, fp16 dmin, 12 scale bytes
    constexpr size_t kQsOffset = 16;
    for (Isa isa : supported_isas()) {
        SCOPED_TRACE(isa_name(isa));
        const std::vector<float> y = run_matmul(pool, w.matrix, x, kShape.tokens, isa);
        ASSERT_EQ(first_outside(y, reference_of(w.bytes), tol), -1);

        std::vector<uint8_t> swapped = w.bytes;   // in one byte of every row, swap the two nibbles
        std::vector<uint8_t> rescaled = w.bytes;  // in every row, one 6-bit scale one step off
        for (int64_t r = 0; r < kShape.rows; ++r) {
            uint8_t& byte = swapped[r * w.matrix.row_bytes + 3 * 144 + kQsOffset + 7];
            if ((byte >> 4) == (byte & 0x0f)) byte ^= 0x01;
            byte = static_cast<uint8_t>((byte << 4) | (byte >> 4));
            rescaled[r * w.matrix.row_bytes + 5 * 144 + kScalesOffset + 1] ^= 0x01;
        }
        EXPECT_EQ(corrupted_rows_caught(y, reference_of(swapped)), kShape.rows);
        EXPECT_EQ(corrupted_rows_caught(y, reference_of(rescaled)), kShape.rows);

        std::vector<float> next_row(y.size());  // y compared with the reference of the next row
        const std::vector<float> reference = reference_of(w.bytes);
        for (int64_t r = 0; r < kShape.rows; ++r) next_row[r] = reference[(r + 1) % kShape.rows];
        EXPECT_EQ(corrupted_rows_caught(y, next_row), kShape.rows);
    }
}

}  // namespace
}  // namespace hearth::cpu
