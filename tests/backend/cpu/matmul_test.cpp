// matmul against matmul_reference for every weight type and every ISA this CPU runs, through the
// public API only, so the test holds whatever kernel a type has (its own or the generic one).
#include "backend/cpu/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "common/error.h"
#include "common/f16_spacing.h"
#include "quant/quant.h"

namespace hearth::cpu {
namespace {

using quant::Type;

constexpr uint32_t kSeed = 20260311;
// Extra y elements past the end, poisoned like y, that no kernel may write.
constexpr int64_t kGuardElements = 16;

struct Shape {
    int64_t rows;
    int64_t cols;
    int64_t tokens;
};

std::string describe(Type type, Isa isa, const Shape& s) {
    return std::string(quant::type_name(type)) + " " + std::string(isa_name(isa)) + " rows=" +
           std::to_string(s.rows) + " cols=" + std::to_string(s.cols) + " tokens=" + std::to_string(s.tokens);
}

std::vector<Type> matmul_types() {
    std::vector<Type> types;
    for (const quant::TypeInfo& info : quant::all_types())
        if (can_matmul(info.type)) types.push_back(info.type);
    return types;
}

int64_t block_elems(Type type) { return quant::type_info(type).block_elems; }

// Weights as a model's: normal values quantized with the reference quantizer.
struct Weights {
    Type type;
    int64_t rows, cols;
    std::vector<uint8_t> bytes;
    std::vector<float> dequantized;  // what matmul_reference dots with

    WeightMatrix matrix() const {
        return {type, bytes.data(), rows, cols, bytes.size() / static_cast<size_t>(rows)};
    }
};

Weights random_weights(Type type, int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 generator(seed);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    const size_t row_bytes = *quant::row_bytes(type, cols);
    Weights w{type, rows, cols, std::vector<uint8_t>(rows * row_bytes), std::vector<float>(rows * cols)};
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
        for (float& v : row) v = normal(generator);
        quant::quantize_row(type, row.data(), w.bytes.data() + r * row_bytes, cols);
        quant::dequantize_row(type, w.bytes.data() + r * row_bytes, w.dequantized.data() + r * cols, cols);
    }
    return w;
}

// Activations with an occasional outlier, as after a norm layer: the outliers widen the int8
// step of their block, which is what the tolerance must account for.
std::vector<float> random_activations(int64_t tokens, int64_t cols, uint32_t seed) {
    std::mt19937 generator(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::vector<float> x(tokens * cols);
    for (float& v : x) v = normal(generator) * (uniform(generator) < 0.01f ? 20.0f : 1.0f);
    return x;
}

std::vector<float> poisoned_output(int64_t elements) {
    return std::vector<float>(elements + kGuardElements, std::numeric_limits<float>::quiet_NaN());
}

// How far y[t][r] may be from the float64 reference. Two sources of error:
//  - Quantized types round each activation to int8 over its weight block (32 or 256 values):
//    step = (block's largest |x|) / 127, error e_i uniform in +-step/2, independent. The dot
//    error sum_i w_i e_i then has standard deviation sqrt(sum_i w_i^2 step_i^2 / 12); we allow
//    6 of them, capped by the worst case sum_i |w_i| step_i / 2 (never exceeded). F16 weights
//    round each activation to f16 instead (as llama.cpp does): the same sum, with each value's
//    own step, its f16 spacing (2^-10 of its binade, 2^-24 below 2^-14). F32 and BF16 keep f32
//    activations: no such error.
//  - f32 accumulation: each add rounds by 2^-24 of a partial sum, partial sums stay below
//    sum_i |w_i x_i|, and kernels add at most cols terms in sequence; the errors of a
//    sequence of n adds grow as sqrt(n) in practice (n in the worst case), so we allow
//    16 sqrt(cols) 2^-24 sum_i |w_i x_i|, at most 1/4 of the worst case for cols = 4096.
using hearth::testing::f16_spacing;

double tolerance(Type type, const float* w, const float* x, int64_t cols) {
    const bool quantized_activations = quant::is_quantized(type);
    const int64_t window = block_elems(type);
    double variance = 0, worst = 0, sum_abs = 0;
    for (int64_t begin = 0; begin < cols; begin += window) {
        double largest = 0;
        for (int64_t i = begin; i < begin + window; ++i) largest = std::max(largest, std::fabs(double{x[i]}));
        for (int64_t i = begin; i < begin + window; ++i) {
            const double step = quantized_activations ? largest / 127
                                : type == Type::F16   ? f16_spacing(x[i])
                                                      : 0.0;
            variance += double{w[i]} * w[i] * step * step / 12;
            worst += std::fabs(double{w[i]}) * step / 2;
            sum_abs += std::fabs(double{w[i]} * x[i]);
        }
    }
    const double rounding = std::min(6 * std::sqrt(variance), worst);
    const double accumulation = 16 * std::sqrt(static_cast<double>(cols)) * 0x1p-24 * sum_abs;
    return rounding + accumulation + 1e-30;
}

// Elements of y (tokens x rows) outside the tolerance around `expected`.
int64_t count_outside_tolerance(const Weights& w, const std::vector<float>& x, int64_t tokens,
                                const std::vector<float>& y, const std::vector<float>& expected) {
    int64_t outside = 0;
    for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t r = 0; r < w.rows; ++r) {
            const double allowed = tolerance(w.type, &w.dequantized[r * w.cols], &x[t * w.cols], w.cols);
            const double error = std::fabs(double{y[t * w.rows + r]} - expected[t * w.rows + r]);
            if (!(error <= allowed)) ++outside;  // NaN counts as outside
        }
    }
    return outside;
}

bool guard_untouched(const std::vector<float>& y, int64_t elements) {
    for (int64_t i = elements; i < elements + kGuardElements; ++i)
        if (!std::isnan(y[i])) return false;
    return true;
}

std::vector<float> run_matmul(ThreadPool& pool, const Weights& w, const std::vector<float>& x, int64_t tokens,
                              Isa isa) {
    std::vector<float> y = poisoned_output(tokens * w.rows);
    std::vector<uint8_t> scratch;
    matmul(pool, w.matrix(), x.data(), tokens, y.data(), scratch, isa);
    return y;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b, int64_t elements) {
    return std::memcmp(a.data(), b.data(), elements * sizeof(float)) == 0;
}

// Column counts: one block, a few blocks, a 4096-wide row (a model's); float types (blocks of
// one value) also get lengths that leave a remainder after every vector width.
std::vector<int64_t> test_cols(Type type) {
    const int64_t block = block_elems(type);
    if (block == 1) return {1, 37, 256, 4096};
    return {block, std::max<int64_t>(256, 4 * block), 4096};
}

TEST(Matmul, EveryTypeAndIsaAgreesWithTheReference) {
    ThreadPool pool(2);
    uint32_t seed = kSeed;
    for (const Type type : matmul_types()) {
        // Every row and token count on the short rows (full tiles, tails, both); the 4096-wide
        // row on three of them, to keep the test to seconds under the sanitizers.
        std::vector<Shape> shapes;
        const std::vector<int64_t> cols_list = test_cols(type);
        for (size_t c = 0; c + 1 < cols_list.size(); ++c)
            for (const int64_t rows : {1, 7, 33})
                for (const int64_t tokens : {1, 4, 5}) shapes.push_back({rows, cols_list[c], tokens});
        for (const Shape long_rows : {Shape{1, 4096, 1}, Shape{7, 4096, 5}, Shape{33, 4096, 1}})
            shapes.push_back(long_rows);
        shapes.push_back({2, cols_list[1], 513});  // many tokens: the tile loop and its tails
        // Decoding rows too wide for their activations to stay in L1 (a kernel may decode those
        // differently); an odd length for the float types, to leave a tail after every vector.
        shapes.push_back({5, block_elems(type) == 1 ? 8195 : 8192, 1});
        for (const Shape& shape : shapes) {
            const Weights w = random_weights(type, shape.rows, shape.cols, ++seed);
            const std::vector<float> x = random_activations(shape.tokens, shape.cols, ++seed);
            std::vector<float> expected(shape.tokens * shape.rows);
            matmul_reference(w.matrix(), x.data(), shape.tokens, expected.data());
            for (const Isa isa : supported_isas()) {
                SCOPED_TRACE(describe(type, isa, shape));
                const std::vector<float> y = run_matmul(pool, w, x, shape.tokens, isa);
                EXPECT_EQ(count_outside_tolerance(w, x, shape.tokens, y, expected), 0);
                EXPECT_TRUE(guard_untouched(y, shape.tokens * shape.rows));
            }
        }
    }
}

// The tolerance is tight enough to matter: a kernel that skipped one 32-value block of a row of
// 256 (an eighth of the terms) fails it for most outputs, though the activations' outliers widen
// it. The largest error seen in the test above is about 0.6 of the tolerance.
TEST(Matmul, ToleranceCatchesAResultMissingOneBlock) {
    ThreadPool pool(1);
    for (const Type type : {Type::Q8_0, Type::Q4_0, Type::F16}) {
        for (const int64_t cols : {256}) {
            SCOPED_TRACE(std::string(quant::type_name(type)) + " cols=" + std::to_string(cols));
            const Shape shape{33, cols, 4};
            const Weights w = random_weights(type, shape.rows, cols, kSeed + 1);
            std::vector<float> x = random_activations(shape.tokens, cols, kSeed + 2);
            const std::vector<float> y = run_matmul(pool, w, x, shape.tokens, best_isa());
            std::vector<float> without_last_block = x;
            for (int64_t t = 0; t < shape.tokens; ++t)
                std::fill_n(&without_last_block[t * cols + cols - 32], 32, 0.0f);
            std::vector<float> wrong(shape.tokens * shape.rows);
            matmul_reference(w.matrix(), without_last_block.data(), shape.tokens, wrong.data());
            const int64_t outputs = shape.tokens * shape.rows;
            EXPECT_GT(count_outside_tolerance(w, x, shape.tokens, y, wrong), outputs / 2);
        }
    }
}

TEST(Matmul, ResultsDoNotDependOnThreadCount) {
    ThreadPool one(1), three(3);
    for (const Type type : matmul_types()) {
        for (const Isa isa : supported_isas()) {
            const Shape shape{37, test_cols(type)[1], 6};  // 3 chunks of 16 rows: one per thread
            SCOPED_TRACE(describe(type, isa, shape));
            const Weights w = random_weights(type, shape.rows, shape.cols, kSeed + 3);
            const std::vector<float> x = random_activations(shape.tokens, shape.cols, kSeed + 4);
            const std::vector<float> single = run_matmul(one, w, x, shape.tokens, isa);
            const std::vector<float> threaded = run_matmul(three, w, x, shape.tokens, isa);
            EXPECT_TRUE(same_bits(single, threaded, shape.tokens * shape.rows));
        }
    }
}

// From two tokens up, an element's bits do not depend on the tile it falls in: 7 tokens at
// once equal 2 + 5 (a full tile split, tails on both sides).
TEST(Matmul, TokenCountDoesNotChangeBitsFromTwoTokensUp) {
    ThreadPool pool(2);
    for (const Type type : matmul_types()) {
        for (const Isa isa : supported_isas()) {
            const Shape shape{21, test_cols(type)[1], 7};
            SCOPED_TRACE(describe(type, isa, shape));
            const Weights w = random_weights(type, shape.rows, shape.cols, kSeed + 5);
            const std::vector<float> x = random_activations(shape.tokens, shape.cols, kSeed + 6);
            const std::vector<float> together = run_matmul(pool, w, x, shape.tokens, isa);
            const std::vector<float> first(x.begin(), x.begin() + 2 * shape.cols);
            const std::vector<float> rest(x.begin() + 2 * shape.cols, x.end());
            const std::vector<float> y_first = run_matmul(pool, w, first, 2, isa);
            const std::vector<float> y_rest = run_matmul(pool, w, rest, shape.tokens - 2, isa);
            std::vector<float> apart(shape.tokens * shape.rows);
            std::copy_n(y_first.begin(), 2 * shape.rows, apart.begin());
            std::copy_n(y_rest.begin(), (shape.tokens - 2) * shape.rows, apart.begin() + 2 * shape.rows);
            EXPECT_TRUE(same_bits(together, apart, shape.tokens * shape.rows));
        }
    }
}

// A token decoded alone goes through the decode kernel (one row at a time, its own summation
// order): it equals the same token in a batch up to f32 reordering only. Both see the same
// prepared activations, so no activation rounding enters: the bound is the accumulation part
// of the tolerance alone, 16 sqrt(cols) 2^-24 sum |w x|. A kernel that dropped or repeated a
// block would be off by about |w x| of that block, far more.
TEST(Matmul, ATokenDecodedAloneMatchesItsBatchUpToSummationOrder) {
    ThreadPool pool(2);
    for (const Type type : matmul_types()) {
        for (const Isa isa : supported_isas()) {
            for (const int64_t cols : test_cols(type)) {
                const Shape shape{19, cols, 3};
                SCOPED_TRACE(describe(type, isa, shape));
                const Weights w = random_weights(type, shape.rows, shape.cols, kSeed + 5);
                const std::vector<float> x = random_activations(shape.tokens, shape.cols, kSeed + 6);
                const std::vector<float> batch = run_matmul(pool, w, x, shape.tokens, isa);
                for (int64_t t = 0; t < shape.tokens; ++t) {
                    const std::vector<float> token(x.begin() + t * cols, x.begin() + (t + 1) * cols);
                    const std::vector<float> alone = run_matmul(pool, w, token, 1, isa);
                    EXPECT_TRUE(guard_untouched(alone, shape.rows));
                    for (int64_t r = 0; r < shape.rows; ++r) {
                        double sum_abs = 0;
                        for (int64_t i = 0; i < cols; ++i)
                            sum_abs += std::fabs(double{w.dequantized[r * cols + i]} * token[i]);
                        const double allowed = 16 * std::sqrt(static_cast<double>(cols)) * 0x1p-24 * sum_abs;
                        EXPECT_LE(std::fabs(double{alone[r]} - batch[t * shape.rows + r]), allowed)
                            << "row " << r << " token " << t;
                    }
                }
            }
        }
    }
}

// matmul_prepared on row ranges that cut through any tile gives the bits of the whole range.
TEST(Matmul, AnyRowRangeGivesTheBitsOfTheWholeMatrix) {
    for (const Type type : matmul_types()) {
        for (const Isa isa : supported_isas()) {
            const Shape shape{23, test_cols(type)[1], 6};
            SCOPED_TRACE(describe(type, isa, shape));
            const Weights w = random_weights(type, shape.rows, shape.cols, kSeed + 7);
            const std::vector<float> x = random_activations(shape.tokens, shape.cols, kSeed + 8);
            const size_t stride = prepared_row_bytes(type, shape.cols, isa);
            std::vector<uint8_t> prepared(stride * shape.tokens);
            prepare_activations(type, x.data(), shape.tokens, shape.cols, prepared.data(), isa);
            std::vector<float> whole = poisoned_output(shape.tokens * shape.rows);
            matmul_prepared(w.matrix(), prepared.data(), shape.tokens, 0, shape.rows, whole.data(), shape.rows, isa);
            std::vector<float> pieces = poisoned_output(shape.tokens * shape.rows);
            const int64_t cuts[] = {0, 1, 6, 7, 13, 22, 23};
            for (size_t i = 0; i + 1 < std::size(cuts); ++i)
                matmul_prepared(w.matrix(), prepared.data(), shape.tokens, cuts[i], cuts[i + 1], pieces.data(),
                                shape.rows, isa);
            EXPECT_TRUE(same_bits(whole, pieces, shape.tokens * shape.rows));
        }
    }
}

// For float and 32-value-block weights every ISA prepares activations to the same bytes: the
// SIMD quantization to int8 rounds exactly as the scalar reference does. A kernel may append
// data of its own after them (AVX-512 Q8_0: the block sums of its prompt kernel).
TEST(Matmul, PreparedActivationsMatchAcrossIsasForFloatAndBlock32Types) {
    constexpr int64_t kTokens = 3;
    for (const Type type : matmul_types()) {
        if (block_elems(type) > 32) continue;  // K-quant formats are their own family's choice
        const int64_t cols = test_cols(type)[1];
        const std::vector<float> x = random_activations(kTokens, cols, kSeed + 9);
        const size_t scalar_stride = prepared_row_bytes(type, cols, Isa::Scalar);
        std::vector<uint8_t> scalar(scalar_stride * kTokens);
        prepare_activations(type, x.data(), kTokens, cols, scalar.data(), Isa::Scalar);
        for (const Isa isa : supported_isas()) {
            SCOPED_TRACE(std::string(quant::type_name(type)) + " " + std::string(isa_name(isa)));
            const size_t stride = prepared_row_bytes(type, cols, isa);
            ASSERT_GE(stride, scalar_stride);
            std::vector<uint8_t> prepared(stride * kTokens);
            prepare_activations(type, x.data(), kTokens, cols, prepared.data(), isa);
            for (int64_t t = 0; t < kTokens; ++t) {
                EXPECT_EQ(std::memcmp(prepared.data() + t * stride, scalar.data() + t * scalar_stride, scalar_stride),
                          0)
                    << "token " << t;
            }
        }
    }
}

// The appended sums of the AVX-512 Q8_0 prompt kernel are -128 times each block's sum of the
// prepared int8 quants.
TEST(Matmul, Q8_0BlockSumsAreMinus128TimesTheQuantSums) {
    if (best_isa() != Isa::Avx512 || !cpu_features().avx512_vnni) GTEST_SKIP() << "no AVX-512 VNNI here";
    const int64_t cols = 256;
    const std::vector<float> x = random_activations(1, cols, kSeed + 12);
    const size_t stride = prepared_row_bytes(Type::Q8_0, cols, Isa::Avx512);
    ASSERT_EQ(stride, cols / 32 * (40 + 4));
    std::vector<uint8_t> prepared(stride);
    prepare_activations(Type::Q8_0, x.data(), 1, cols, prepared.data(), Isa::Avx512);
    for (int64_t b = 0; b < cols / 32; ++b) {
        int32_t expected = 0, stored = 0;
        for (int i = 0; i < 32; ++i) expected -= 128 * static_cast<int8_t>(prepared[b * 40 + 8 + i]);
        std::memcpy(&stored, prepared.data() + cols / 32 * 40 + b * 4, sizeof(stored));
        EXPECT_EQ(stored, expected) << "block " << b;
    }
}

// The 32-value-block kernels of AVX2 (sign trick, maddubs) and AVX-512 VNNI (activations offset
// by 128, the offset taken back through the weight levels' sums) compute the same exact int32
// lanes and then the same float operations, so they agree to the bit, for prompt tiles and for
// decoding. A Q8_0 level of -128 (which llama.cpp never writes, but a file may hold) is included.
// The AVX-512 Q8_0 prompt kernel (16 rows in the lanes) sums each block whole before its f32
// step, so there the two are held to the reference's tolerance instead.
TEST(Matmul, Block32KernelsOfEveryIsaGiveTheSameBits) {
    if (best_isa() != Isa::Avx512) GTEST_SKIP() << "needs AVX2 and AVX-512 to compare";
    ThreadPool pool(2);
    for (const Type type : matmul_types()) {
        if (block_elems(type) != 32) continue;
        for (const int64_t tokens : {1, 5}) {
            const Shape shape{9, 256, tokens};
            SCOPED_TRACE(describe(type, Isa::Avx512, shape));
            Weights w = random_weights(type, shape.rows, shape.cols, kSeed + 10);
            if (type == Type::Q8_0) w.bytes[2] = 0x80;  // row 0, block 0, level 0: -128
            const std::vector<float> x = random_activations(shape.tokens, shape.cols, kSeed + 11);
            const std::vector<float> avx2 = run_matmul(pool, w, x, shape.tokens, Isa::Avx2);
            const std::vector<float> avx512 = run_matmul(pool, w, x, shape.tokens, Isa::Avx512);
            if (type != Type::Q8_0 || tokens == 1) {
                EXPECT_TRUE(same_bits(avx2, avx512, shape.tokens * shape.rows));
                continue;
            }
            std::vector<float> expected(shape.tokens * shape.rows);
            matmul_reference(w.matrix(), x.data(), shape.tokens, expected.data());
            EXPECT_EQ(count_outside_tolerance(w, x, shape.tokens, avx512, expected), 0);
            EXPECT_EQ(count_outside_tolerance(w, x, shape.tokens, avx2, expected), 0);
        }
    }
}

TEST(Matmul, RejectsRowBytesThatDoNotMatchTheType) {
    ThreadPool pool(1);
    const Weights w = random_weights(Type::Q8_0, 4, 64, kSeed);
    WeightMatrix wrong = w.matrix();
    wrong.row_bytes += 2;
    const std::vector<float> x(64, 1.0f);
    std::vector<float> y(4);
    std::vector<uint8_t> scratch;
    EXPECT_THROW(matmul(pool, wrong, x.data(), 1, y.data(), scratch), Error);
    wrong = w.matrix();
    wrong.type = Type::Q4_0;  // 64 Q4_0 values are 36 bytes, not Q8_0's 68
    EXPECT_THROW(matmul(pool, wrong, x.data(), 1, y.data(), scratch), Error);
}

}  // namespace
}  // namespace hearth::cpu
