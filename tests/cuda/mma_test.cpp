// matmul_int8_mma (the int8 tensor-core product for batched decoding) against float64 on the
// host, for every type it takes: the dequantized weights (quant::dequantize_row) times the
// dequantized activations (int8 values times their block's step, as quantize_activations left
// them), over token counts around its tiles of 8 and launches of 64, rows that are no multiple of
// its 16-row tiles and the lengths of Llama 3.1 8B's rows; and matmul_f16_mma (Q4_K on f16 tensor
// cores) against float64 products of its f16 weights and activations. Needs a GPU; CI only builds
// it.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/device.h"
#include "backend/cuda/kernels.h"
#include "common/normal_values.h"
#include "quant/quant.h"
#include "quant/scale_min_k4.h"
#include "quant/types.h"

namespace hearth::cuda {
namespace {

using quant::Type;

void check(cudaError_t status, const char* what) {
    ASSERT_EQ(status, cudaSuccess) << what << ": " << cudaGetErrorString(status);
}

using cuda::DeviceBuffer;

template <typename T>
void upload(DeviceBuffer& device, const std::vector<T>& host) {
    check(cudaMemcpy(device.as(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
}

template <typename T>
std::vector<T> download(const DeviceBuffer& device, size_t count) {
    std::vector<T> host(count);
    check(cudaMemcpy(host.data(), device.as(), count * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return host;
}

using hearth::testing::normal_values;

// A seeded random weight of `type`: its dequantized values on the host and its device layout.
struct Weight {
    std::vector<float> values;  // rows x cols
    std::vector<uint8_t> file;  // the rows as in the file
    std::unique_ptr<DeviceBuffer> device;
    DeviceMatrix matrix;
};

Weight make_weight(Type type, int64_t rows, int64_t cols, uint32_t seed) {
    const auto id = static_cast<uint32_t>(type);
    const size_t row_bytes = *quant::row_bytes(type, cols);
    const size_t stride = device_row_stride(id, row_bytes);
    const std::vector<float> drawn = normal_values(rows * cols, seed, 0.05f);
    std::vector<uint8_t> file(rows * row_bytes);
    Weight w;
    w.values.resize(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
        quant::quantize_row(type, &drawn[r * cols], &file[r * row_bytes], cols);
        quant::dequantize_row(type, &file[r * row_bytes], &w.values[r * cols], cols);
    }
    w.file = file;
    std::vector<uint8_t> device(rows * stride);
    if (has_split_layout(id))
        split_rows(id, file.data(), rows, cols, row_bytes, device.data());
    else
        device = file;
    w.device = std::make_unique<DeviceBuffer>(device.size(), "weights");
    upload(*w.device, device);
    w.matrix = {id, w.device->as(), rows, cols, stride, device_scales_offset(id, cols)};
    return w;
}

// Activations of `tokens` rows as after a norm layer (an occasional outlier widens its block's
// step), quantized on the device as the kernels before a matmul do, and their values read back.
struct QuantizedActivations {
    DeviceBuffer values, scales;
    std::vector<float> dequantized;  // tokens x cols: value * step
    QuantizedActivations(int64_t tokens, int64_t cols, uint32_t seed)
        : values(tokens * cols, "activations"), scales(tokens * cols / 32 * 2 * sizeof(float), "activations") {
        std::vector<float> x = normal_values(tokens * cols, seed, 1.0f);
        std::mt19937 generator(seed + 1);
        std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
        for (float& v : x) v *= uniform(generator) < 0.01f ? 20.0f : 1.0f;
        DeviceBuffer x_device(x.size() * sizeof(float), "activations");
        upload(x_device, x);
        quantize_activations(x_device.as<float>(), tokens, cols, values.as<int8_t>(), scales.as<float>(),
                             nullptr);
        check(cudaDeviceSynchronize(), "quantize_activations");
        const std::vector<int8_t> q = download<int8_t>(values, x.size());
        const std::vector<float> s = download<float>(scales, x.size() / 32 * 2);
        dequantized.resize(x.size());
        for (size_t i = 0; i < x.size(); ++i) dequantized[i] = q[i] * s[i / 32 * 2];
    }
};

std::string describe(Type type, int64_t rows, int64_t cols, int64_t tokens, bool accumulate) {
    return std::string(quant::type_name(type)) + " rows=" + std::to_string(rows) +
           " cols=" + std::to_string(cols) + " tokens=" + std::to_string(tokens) +
           (accumulate ? " accumulating" : "");
}

// The kernel's arithmetic is exact up to f32 rounding: the int32 dots are exact and become floats
// exactly, each sub-block's step and scale products round once (the activation step itself loses
// its two lowest mantissa bits, under 2^-22 of it), and the sums round as they add up, the
// cluster's partial sums included. Each of a row's cols / 32 sub-blocks contributes a few
// roundings of 2^-24 relative to terms at most 3 |w| |x| (Q4_K's scale part and min part are each
// at most about twice a weight's size), and these add up in the accumulator: allowed is
// 3 (cols / 32 + 8) 2^-24 sum |w x|, plus a rounding of what `out` held when accumulating. A
// wrong sub-block, scale or token moves an output by far more.
double tolerance(double sum_abs_products, int64_t cols, float held) {
    return 3.0 * (static_cast<double>(cols / 32) + 8) * 0x1p-24 * sum_abs_products +
           0x1p-23 * std::fabs(held) + 1e-30;
}

// The float64 products of every row and token, and their sums of |w x|.
struct Reference {
    std::vector<double> products, sum_abs;
};

Reference reference(const std::vector<float>& w, const std::vector<float>& x, int64_t rows, int64_t cols,
                    int64_t tokens) {
    Reference ref{std::vector<double>(tokens * rows), std::vector<double>(tokens * rows)};
    for (int64_t t = 0; t < tokens; ++t)
        for (int64_t r = 0; r < rows; ++r) {
            double sum = 0, sum_abs = 0;
            for (int64_t i = 0; i < cols; ++i) {
                const double p = double{w[r * cols + i]} * x[t * cols + i];
                sum += p;
                sum_abs += std::fabs(p);
            }
            ref.products[t * rows + r] = sum;
            ref.sum_abs[t * rows + r] = sum_abs;
        }
    return ref;
}

// What `out` holds before a product of `rows` x `tokens`, plus a guard row: NaN when not
// accumulating, seeded random values when accumulating.
std::vector<float> held_before(int64_t tokens, int64_t rows, bool accumulate, uint32_t& seed) {
    std::vector<float> held((tokens + 1) * rows, std::numeric_limits<float>::quiet_NaN());
    if (accumulate) {
        const std::vector<float> start = normal_values(tokens * rows, ++seed, 1.0f);
        std::copy(start.begin(), start.end(), held.begin());
    }
    return held;
}

// Each matrix's output on the device, as held_before fills it, and the products that write them.
struct Outputs {
    std::vector<std::vector<float>> held;
    std::vector<std::unique_ptr<DeviceBuffer>> buffers;
    std::vector<MatvecProduct> products;
};

Outputs outputs_for(const std::vector<Weight>& weights, int64_t tokens, bool accumulate, uint32_t& seed) {
    Outputs o;
    for (const Weight& w : weights) {
        o.held.push_back(held_before(tokens, w.matrix.rows, accumulate, seed));
        o.buffers.push_back(std::make_unique<DeviceBuffer>(o.held.back().size() * sizeof(float), "outputs"));
        upload(*o.buffers.back(), o.held.back());
        o.products.push_back({w.matrix, o.buffers.back()->as<float>()});
    }
    return o;
}

// Checks y (as downloaded, guard row included) against held + expected, each output within
// allowed_for(its sum of |w x|, the row length, what out held): by default the int8 kernel's.
using Tolerance = double (*)(double sum_abs_products, int64_t cols, float held);

void expect_within_tolerance(const std::vector<float>& y, const std::vector<float>& held, const Reference& expected,
                             int64_t rows, int64_t cols, int64_t tokens, bool accumulate, const std::string& c,
                             Tolerance allowed_for = tolerance) {
    int64_t outside = 0;
    double worst_ratio = 0;
    for (int64_t t = 0; t < tokens; ++t)
        for (int64_t r = 0; r < rows; ++r) {
            const float before = accumulate ? held[t * rows + r] : 0.0f;
            const double want = before + expected.products[t * rows + r];
            const double allowed = allowed_for(expected.sum_abs[t * rows + r], cols, before);
            const double error = std::fabs(y[t * rows + r] - want);
            worst_ratio = std::max(worst_ratio, error / allowed);
            if (!(error <= allowed)) ++outside;
        }
    EXPECT_EQ(outside, 0) << c << "; worst error / tolerance " << worst_ratio;
    for (int64_t r = 0; r < rows; ++r)
        ASSERT_TRUE(std::isnan(y[tokens * rows + r])) << c << ": the guard row was written";
}

class CudaMmaTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (list_devices().empty()) GTEST_SKIP() << "no CUDA GPU";
    }

    // out = w times each token count's activations, poisoned with NaN (plus a guard row after
    // it that must stay NaN) when not accumulating, and seeded random values when accumulating.
    void expect_matches_float64(Type type, int64_t rows, int64_t cols, uint32_t& seed) {
        const Weight w = make_weight(type, rows, cols, ++seed);
        for (const int64_t tokens : {1, 9, 16, 17, 64, 65, 100}) {
            const QuantizedActivations x(tokens, cols, ++seed);
            const Reference expected = reference(w.values, x.dequantized, rows, cols, tokens);
            for (const bool accumulate : {false, true}) {
                const std::string c = describe(type, rows, cols, tokens, accumulate);
                const std::vector<float> held = held_before(tokens, rows, accumulate, seed);
                DeviceBuffer out(held.size() * sizeof(float), "outputs");
                upload(out, held);
                matmul_int8_mma(w.matrix, x.values.as<int8_t>(), x.scales.as<float>(), tokens,
                                out.as<float>(), accumulate, nullptr);
                check(cudaGetLastError(), "matmul_int8_mma launch");
                check(cudaDeviceSynchronize(), "matmul_int8_mma");
                const std::vector<float> y = download<float>(out, held.size());
                expect_within_tolerance(y, held, expected, rows, cols, tokens, accumulate, c);
            }
        }
    }

    // The multi-matrix entry point: matrices of `row_counts` rows, one launch per 64 tokens, each
    // against its own float64 products.
    void expect_fused_matches_float64(Type type, const std::vector<int64_t>& row_counts, int64_t cols,
                                      uint32_t& seed) {
        std::vector<Weight> weights;
        for (const int64_t rows : row_counts) weights.push_back(make_weight(type, rows, cols, ++seed));
        for (const int64_t tokens : {2, 16, 40, 64, 65}) {
            const QuantizedActivations x(tokens, cols, ++seed);
            for (const bool accumulate : {false, true}) {
                const Outputs o = outputs_for(weights, tokens, accumulate, seed);
                const auto& [held, outs, products] = o;
                matmul_int8_mma(products.data(), static_cast<int>(products.size()), x.values.as<int8_t>(),
                                x.scales.as<float>(), tokens, accumulate, nullptr);
                check(cudaGetLastError(), "matmul_int8_mma launch");
                check(cudaDeviceSynchronize(), "matmul_int8_mma");
                for (size_t i = 0; i < weights.size(); ++i) {
                    const int64_t rows = weights[i].matrix.rows;
                    const std::string c = describe(type, rows, cols, tokens, accumulate) + ", matrix " +
                                          std::to_string(i) + " of " + std::to_string(weights.size());
                    const Reference expected = reference(weights[i].values, x.dequantized, rows, cols, tokens);
                    const std::vector<float> y = download<float>(*outs[i], held[i].size());
                    expect_within_tolerance(y, held[i], expected, rows, cols, tokens, accumulate, c);
                }
            }
        }
    }
};

// --- matmul_f16_mma ------------------------------------------------------------------------

double to_f16(double v) {
    return static_cast<double>(static_cast<_Float16>(v));
}

// Q4_K weights as matmul_f16_mma uses them: each sub-block's scale d * scale and min dmin * min
// rounded to f16, and each value level * scale - min rounded to f16 once.
std::vector<double> q4k_as_f16(const std::vector<uint8_t>& file, int64_t rows, int64_t cols) {
    std::vector<double> w(rows * cols);
    const int64_t blocks = cols / 256;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* block = &file[(r * blocks + b) * 144];
            _Float16 d, dmin;
            std::memcpy(&d, block, 2);
            std::memcpy(&dmin, block + 2, 2);
            for (int sub = 0; sub < 8; ++sub) {
                const quant::ScaleMin sm = quant::unpack_scale_min_k4(block + 4, sub);
                const double s = to_f16(static_cast<float>(d) * static_cast<float>(sm.scale));
                const double m = to_f16(static_cast<float>(dmin) * static_cast<float>(sm.min));
                for (int l = 0; l < 32; ++l) {
                    const uint8_t byte = block[16 + 32 * (sub / 2) + l];
                    const int level = sub % 2 == 0 ? byte & 0x0f : byte >> 4;
                    w[r * cols + b * 256 + 32 * sub + l] = to_f16(level * s - m);
                }
            }
        }
    return w;
}

// Q6_K weights as matmul_f16_mma uses them: each 16-value chunk's scale d * scale rounded to f16,
// and each value (level - 32) * scale rounded to f16 once. Written from the file's block layout
// (ql[128], qh[64], scales[16], d), independently of the device's split rows.
std::vector<double> q6k_as_f16(const std::vector<uint8_t>& file, int64_t rows, int64_t cols) {
    std::vector<double> w(rows * cols);
    const int64_t blocks = cols / 256;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* block = &file[(r * blocks + b) * 210];
            _Float16 d;
            std::memcpy(&d, block + 208, 2);
            for (int v = 0; v < 256; ++v) {
                const int half = v / 128, group = (v % 128) / 32, l = v % 32;
                const uint8_t low = block[64 * half + 32 * (group % 2) + l];
                const int nibble = group < 2 ? low & 0x0f : low >> 4;
                const int top = (block[128 + 32 * half + l] >> (2 * group)) & 3;
                const auto scale = static_cast<int8_t>(block[192 + v / 16]);
                const double s = to_f16(static_cast<float>(d) * static_cast<float>(scale));
                w[r * cols + b * 256 + v] = to_f16(static_cast<float>((nibble | (top << 4)) - 32) * s);
            }
        }
    return w;
}

std::vector<double> as_f16_dequantized(Type type, const std::vector<uint8_t>& file, int64_t rows, int64_t cols) {
    return type == Type::Q4_K ? q4k_as_f16(file, rows, cols) : q6k_as_f16(file, rows, cols);
}

// Activations as after a norm layer (occasional outliers), rounded to f16 on the host.
struct F16Activations {
    DeviceBuffer values;
    std::vector<float> rounded;  // tokens x cols
    F16Activations(int64_t tokens, int64_t cols, uint32_t seed) : values(tokens * cols * 2, "activations") {
        std::vector<float> x = normal_values(tokens * cols, seed, 1.0f);
        std::mt19937 generator(seed + 1);
        std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
        std::vector<uint16_t> bits(x.size());
        rounded.resize(x.size());
        for (size_t i = 0; i < x.size(); ++i) {
            const _Float16 h = static_cast<_Float16>(x[i] * (uniform(generator) < 0.01f ? 20.0f : 1.0f));
            std::memcpy(&bits[i], &h, 2);
            rounded[i] = static_cast<float>(h);
        }
        upload(values, bits);
    }
};

// With the weights and activations as f16, every product is exact in f32 and only the
// accumulation rounds: the tensor cores add k16 chunks into f32, and the cluster's partial sums
// add once more; allowed is (cols / 16 + 8) 2^-22 sum |w x|, plus a rounding of what `out` held.
// A wrong nibble, sub-block scale or token moves an output by far more.
double f16_tolerance(double sum_abs_products, int64_t cols, float held) {
    return (static_cast<double>(cols / 16) + 8) * 0x1p-22 * sum_abs_products + 0x1p-23 * std::fabs(held) + 1e-30;
}

class CudaF16MmaTest : public CudaMmaTest {
  protected:
    // Matrices of `row_counts` rows in one call (one launch per 64 tokens), each against its own
    // float64 products, outputs poisoned with NaN (a guard row after them must stay NaN) or
    // holding seeded values to accumulate onto.
    void expect_matches_float64(Type type, const std::vector<int64_t>& row_counts, int64_t cols, uint32_t& seed) {
        std::vector<Weight> weights;
        std::vector<std::vector<float>> as_f16;
        for (const int64_t rows : row_counts) {
            weights.push_back(make_weight(type, rows, cols, ++seed));
            const std::vector<double> w = as_f16_dequantized(type, weights.back().file, rows, cols);
            // The f16 reference reads the file's layout as quant::dequantize_row does: within the
            // f16 roundings of each value, its scale and (Q4_K) its min, each at most about the
            // super-block's largest value. A misread layout errs by the values themselves.
            const std::vector<float>& values = weights.back().values;
            for (int64_t block = 0; block < rows * cols; block += 256) {
                double largest = 0;
                for (int64_t i = block; i < block + 256; ++i) largest = std::max(largest, std::fabs(double{values[i]}));
                for (int64_t i = block; i < block + 256; ++i)
                    ASSERT_LE(std::fabs(w[i] - values[i]), 0x1p-10 * (std::fabs(values[i]) + 2 * largest))
                        << quant::type_name(type) << " value " << i;
            }
            as_f16.emplace_back(w.begin(), w.end());
        }
        for (const int64_t tokens : {2, 9, 16, 17, 33, 64, 65, 100}) {
            const F16Activations x(tokens, cols, ++seed);
            for (const bool accumulate : {false, true}) {
                const Outputs o = outputs_for(weights, tokens, accumulate, seed);
                const auto& [held, outs, products] = o;
                matmul_f16_mma(products.data(), static_cast<int>(products.size()), x.values.as<uint16_t>(), tokens,
                               accumulate, nullptr);
                check(cudaGetLastError(), "matmul_f16_mma launch");
                check(cudaDeviceSynchronize(), "matmul_f16_mma");
                for (size_t i = 0; i < weights.size(); ++i) {
                    const int64_t rows = weights[i].matrix.rows;
                    const std::string c = describe(type, rows, cols, tokens, accumulate) + ", matrix " +
                                          std::to_string(i) + " of " + std::to_string(weights.size());
                    const Reference expected = reference(as_f16[i], x.rounded, rows, cols, tokens);
                    const std::vector<float> y = download<float>(*outs[i], held[i].size());
                    expect_within_tolerance(y, held[i], expected, rows, cols, tokens, accumulate, c, f16_tolerance);
                }
            }
        }
    }
};

// Rows that end in partial 128-row blocks, rows of one to 56 super-blocks (split among a cluster's
// blocks or not), token counts around the 16-token tiles and the 64-token launches, one matrix a
// launch and three.
TEST_F(CudaF16MmaTest, EqualsFloat64OfTheF16DequantizedWeights) {
    uint32_t seed = 20261129;
    for (const Type type : {Type::Q4_K, Type::Q6_K}) {
        ASSERT_TRUE(has_f16_mma(static_cast<uint32_t>(type)));
        expect_matches_float64(type, {1000}, 256, seed);
        expect_matches_float64(type, {1000}, 4096, seed);
        expect_matches_float64(type, {300}, 14336, seed);
        expect_matches_float64(type, {1000, 300, 77}, 4096, seed);
        expect_matches_float64(type, {130, 512}, 2048, seed);
    }
}

TEST_F(CudaF16MmaTest, TakesOnlyQ4KAndQ6K) {
    for (const Type type : {Type::F32, Type::F16, Type::Q4_0, Type::Q2_K, Type::Q3_K, Type::Q5_K, Type::Q8_0})
        EXPECT_FALSE(has_f16_mma(static_cast<uint32_t>(type)));
}

// 1,000 and 300 rows end in partial 16-row tiles and partial 128-row blocks.
TEST_F(CudaMmaTest, EqualsFloat64ReferenceForEveryType) {
    uint32_t seed = 20261126;
    for (const Type type : {Type::Q4_K, Type::Q6_K, Type::Q8_0}) {
        ASSERT_TRUE(has_int8_mma(static_cast<uint32_t>(type)));
        expect_matches_float64(type, 1000, 256, seed);
        expect_matches_float64(type, 1000, 4096, seed);
        expect_matches_float64(type, 300, 14336, seed);
    }
}

// Several matrices in one launch (Q, K and V; gate and up), rows that end in partial blocks, each
// matrix's own rows written and no other's.
TEST_F(CudaMmaTest, SeveralMatricesInOneLaunchEqualFloat64Reference) {
    uint32_t seed = 20261128;
    static_assert(kMaxFusedMmas == 3);
    for (const Type type : {Type::Q4_K, Type::Q6_K, Type::Q8_0}) {
        expect_fused_matches_float64(type, {1000, 300, 77}, 4096, seed);
        expect_fused_matches_float64(type, {130, 512}, 2048, seed);
        expect_fused_matches_float64(type, {50}, 256, seed);
    }
}

// Q8_0 rows whose length is no multiple of 256 end in a short step of Q8_0 blocks.
TEST_F(CudaMmaTest, Q8_0RowsOfAnyWholeNumberOfBlocks) {
    uint32_t seed = 20261127;
    expect_matches_float64(Type::Q8_0, 37, 288, seed);
    expect_matches_float64(Type::Q8_0, 5, 32, seed);
}

TEST_F(CudaMmaTest, TakesOnlyQ4KQ6KAndQ8_0) {
    for (const Type type : {Type::F32, Type::F16, Type::BF16, Type::Q4_0, Type::Q2_K, Type::Q3_K, Type::Q5_K})
        EXPECT_FALSE(has_int8_mma(static_cast<uint32_t>(type)));
}

}  // namespace
}  // namespace hearth::cuda
