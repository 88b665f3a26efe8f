// The dispatch of quant.h against llama.cpp's reference results (bit for bit, byte for byte),
// plus seeded random round trips with a stated error bound for every type.
#include "quant/quant.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "fixtures.h"
#include "quant/iq4_nl.h"
#include "quant/iq4_xs.h"
#include "quant/mxfp4.h"
#include "quant/q2_k.h"
#include "quant/q3_k.h"
#include "quant/q4_0.h"
#include "quant/q4_1.h"
#include "quant/q4_k.h"
#include "quant/q5_0.h"
#include "quant/q5_1.h"
#include "quant/q5_k.h"
#include "quant/q6_k.h"
#include "quant/q8_0.h"
#include "quant/q8_k.h"

namespace hearth::quant {
namespace {

using testing::ManifestRow;

std::string manifest_test_name(const ::testing::TestParamInfo<ManifestRow>& info) {
    return info.param.type;
}

class ReferenceFixture : public ::testing::TestWithParam<ManifestRow> {
  protected:
    Type type() const {
        const std::optional<Type> type = type_from_name(GetParam().type);
        if (!type) throw std::runtime_error("manifest names unknown type " + GetParam().type);
        return *type;
    }
    std::string path(const std::string& suffix) const {
        return testing::fixtures_dir() + "/" + GetParam().type + suffix;
    }
};

TEST_P(ReferenceFixture, ManifestAgreesWithTypeTable) {
    const ManifestRow& row = GetParam();
    const TypeInfo& info = type_info(type());
    EXPECT_EQ(static_cast<uint32_t>(info.type), row.ggml_id);
    EXPECT_EQ(info.block_elems, row.block_elems);
    EXPECT_EQ(static_cast<int64_t>(info.block_bytes), row.block_bytes);
    EXPECT_EQ(row_bytes(type(), row.n_per_row).value() * row.rows, static_cast<size_t>(row.quant_bytes));
}

TEST_P(ReferenceFixture, QuantizeMatchesLlamaCppBytes) {
    const ManifestRow& row = GetParam();
    const std::vector<float> input = testing::read_floats(testing::fixtures_dir() + "/input.f32");
    const std::vector<uint8_t> expected = testing::read_bytes(path(".quant"));
    ASSERT_EQ(input.size(), static_cast<size_t>(row.rows * row.n_per_row));
    ASSERT_EQ(expected.size(), static_cast<size_t>(row.quant_bytes));

    const size_t bytes_per_row = *row_bytes(type(), row.n_per_row);
    std::vector<uint8_t> actual(expected.size(), 0xAB);  // poison: an unwritten byte shows
    for (int64_t r = 0; r < row.rows; ++r) {
        quantize_row(type(), input.data() + r * row.n_per_row, actual.data() + r * bytes_per_row,
                     row.n_per_row);
    }
    for (size_t i = 0; i < actual.size(); ++i) {
        if (actual[i] != expected[i]) {
            const size_t in_row = i % bytes_per_row;
            FAIL() << row.type << ": first differing byte at row " << i / bytes_per_row << ", block "
                   << in_row / row.block_bytes << ", byte " << in_row % row.block_bytes
                   << " of the block: got 0x" << std::hex << int{actual[i]} << ", llama.cpp wrote 0x"
                   << int{expected[i]};
        }
    }
}

TEST_P(ReferenceFixture, DequantizeMatchesLlamaCppFloatsBitForBit) {
    const ManifestRow& row = GetParam();
    const std::vector<uint8_t> quantized = testing::read_bytes(path(".quant"));
    const std::vector<float> expected = testing::read_floats(path(".dequant.f32"));
    ASSERT_EQ(expected.size(), static_cast<size_t>(row.rows * row.n_per_row));

    const size_t bytes_per_row = *row_bytes(type(), row.n_per_row);
    std::vector<float> actual(expected.size(), std::numeric_limits<float>::quiet_NaN());
    for (int64_t r = 0; r < row.rows; ++r) {
        dequantize_row(type(), quantized.data() + r * bytes_per_row, actual.data() + r * row.n_per_row,
                       row.n_per_row);
    }
    for (size_t i = 0; i < actual.size(); ++i) {
        const auto got = std::bit_cast<uint32_t>(actual[i]);
        const auto want = std::bit_cast<uint32_t>(expected[i]);
        if (got != want) {
            const int64_t in_row = static_cast<int64_t>(i) % row.n_per_row;
            FAIL() << row.type << ": first differing float at row " << static_cast<int64_t>(i) / row.n_per_row
                   << ", block " << in_row / row.block_elems << ", element " << in_row % row.block_elems
                   << ": got " << actual[i] << " (0x" << std::hex << got << "), llama.cpp gave "
                   << expected[i] << " (0x" << want << ")";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllManifestTypes, ReferenceFixture, ::testing::ValuesIn(testing::read_manifest()),
                         manifest_test_name);

// Round trip of seeded normal data: RMS error relative to the RMS of the input stays under a
// bound 20% above the worst each format showed over these cases (measured values in comments).
struct RoundTripCase {
    Type type;
    double max_relative_rms_error;
};

void PrintTo(const RoundTripCase& item, std::ostream* out) {
    *out << type_name(item.type);
}

std::string round_trip_name(const ::testing::TestParamInfo<RoundTripCase>& info) {
    return std::string(type_name(info.param.type));
}

class RoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

std::vector<float> seeded_normal(size_t count, uint32_t seed, float sigma) {
    std::mt19937 generator(seed);
    std::normal_distribution<float> normal(0.0f, sigma);
    std::vector<float> values(count);
    for (float& value : values) value = normal(generator);
    return values;
}

double relative_rms_error(const std::vector<float>& original, const std::vector<float>& restored) {
    double error = 0;
    double signal = 0;
    for (size_t i = 0; i < original.size(); ++i) {
        const double diff = static_cast<double>(restored[i]) - original[i];
        error += diff * diff;
        signal += static_cast<double>(original[i]) * original[i];
    }
    return std::sqrt(error / signal);  // NaN (a poisoned float left unwritten) fails every bound
}

TEST_P(RoundTrip, SeededNormalRowsStayWithinBound) {
    const Type type = GetParam().type;
    const int64_t block = type_info(type).block_elems;
    // Odd row counts and row lengths of one and several blocks (at least 256 values).
    for (const int64_t rows : {1, 3, 7}) {
        for (const int64_t blocks_per_row : {int64_t{1}, int64_t{3}}) {
            const int64_t n = std::max<int64_t>(block, 256 / block * block) * blocks_per_row;
            const size_t bytes_per_row = *row_bytes(type, n);
            const std::vector<float> input =
                seeded_normal(static_cast<size_t>(rows * n), static_cast<uint32_t>(1000 * rows + n), 0.7f);

            // Quantize twice over different poison: any byte the quantizer leaves unwritten differs.
            std::vector<uint8_t> quantized(rows * bytes_per_row, 0xAB);
            std::vector<uint8_t> quantized_over_zeros(rows * bytes_per_row, 0x00);
            std::vector<float> restored(input.size(), std::numeric_limits<float>::quiet_NaN());
            for (int64_t r = 0; r < rows; ++r) {
                quantize_row(type, input.data() + r * n, quantized.data() + r * bytes_per_row, n);
                quantize_row(type, input.data() + r * n, quantized_over_zeros.data() + r * bytes_per_row, n);
                dequantize_row(type, quantized.data() + r * bytes_per_row, restored.data() + r * n, n);
            }
            ASSERT_EQ(quantized, quantized_over_zeros)
                << "some byte is left unwritten (rows " << rows << ", n " << n << ")";
            const double error = relative_rms_error(input, restored);
            EXPECT_LE(error, GetParam().max_relative_rms_error) << "rows " << rows << ", n " << n;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip,
                         ::testing::Values(RoundTripCase{Type::F32, 0.0},
                                           RoundTripCase{Type::F16, 2.7e-4},    // worst measured 2.2e-4
                                           RoundTripCase{Type::BF16, 2.1e-3},   // 1.7e-3
                                           RoundTripCase{Type::Q8_0, 0.007},    // 0.0058
                                           RoundTripCase{Type::Q8_K, 0.009},    // 0.0074
                                           RoundTripCase{Type::Q6_K, 0.024},    // 0.0194
                                           RoundTripCase{Type::Q5_0, 0.056},    // 0.046
                                           RoundTripCase{Type::Q5_1, 0.048},    // 0.040
                                           RoundTripCase{Type::Q5_K, 0.046},    // 0.038
                                           RoundTripCase{Type::Q4_0, 0.11},     // 0.091
                                           RoundTripCase{Type::Q4_1, 0.10},     // 0.082
                                           RoundTripCase{Type::Q4_K, 0.092},    // 0.076
                                           RoundTripCase{Type::IQ4_NL, 0.096},  // 0.080
                                           RoundTripCase{Type::IQ4_XS, 0.097},  // 0.080
                                           RoundTripCase{Type::MXFP4, 0.142},   // 0.118
                                           RoundTripCase{Type::Q3_K, 0.19},     // 0.158
                                           RoundTripCase{Type::Q2_K, 0.36}),    // 0.301
                         round_trip_name);

TEST(Quant, ZeroRowsRoundTripToZero) {
    const std::vector<float> zeros(512, 0.0f);
    for (const ManifestRow& row : testing::read_manifest()) {
        const Type type = *type_from_name(row.type);
        std::vector<uint8_t> quantized(*row_bytes(type, 512), 0xAB);
        std::vector<float> restored(512, std::numeric_limits<float>::quiet_NaN());
        quantize_row(type, zeros.data(), quantized.data(), 512);
        dequantize_row(type, quantized.data(), restored.data(), 512);
        for (float value : restored) ASSERT_EQ(value, 0.0f) << row.type;  // -0 counts as zero
    }
}

TEST(Quant, BlockStructsHaveTheSizesOfTheTypeTable) {
    EXPECT_EQ(sizeof(BlockQ4_0), type_info(Type::Q4_0).block_bytes);
    EXPECT_EQ(sizeof(BlockQ4_1), type_info(Type::Q4_1).block_bytes);
    EXPECT_EQ(sizeof(BlockQ5_0), type_info(Type::Q5_0).block_bytes);
    EXPECT_EQ(sizeof(BlockQ5_1), type_info(Type::Q5_1).block_bytes);
    EXPECT_EQ(sizeof(BlockQ8_0), type_info(Type::Q8_0).block_bytes);
    EXPECT_EQ(sizeof(BlockQ2K), type_info(Type::Q2_K).block_bytes);
    EXPECT_EQ(sizeof(BlockQ3K), type_info(Type::Q3_K).block_bytes);
    EXPECT_EQ(sizeof(BlockQ4K), type_info(Type::Q4_K).block_bytes);
    EXPECT_EQ(sizeof(BlockQ5K), type_info(Type::Q5_K).block_bytes);
    EXPECT_EQ(sizeof(BlockQ6K), type_info(Type::Q6_K).block_bytes);
    EXPECT_EQ(sizeof(BlockQ8K), type_info(Type::Q8_K).block_bytes);
    EXPECT_EQ(sizeof(BlockIQ4NL), type_info(Type::IQ4_NL).block_bytes);
    EXPECT_EQ(sizeof(BlockIQ4XS), type_info(Type::IQ4_XS).block_bytes);
    EXPECT_EQ(sizeof(BlockMXFP4), type_info(Type::MXFP4).block_bytes);
}

TEST(Quant, BlockStructsHaveTheElementCountsOfTheTypeTable) {
    EXPECT_EQ(BlockQ4_0::kElems, type_info(Type::Q4_0).block_elems);
    EXPECT_EQ(BlockQ4_1::kElems, type_info(Type::Q4_1).block_elems);
    EXPECT_EQ(BlockQ5_0::kElems, type_info(Type::Q5_0).block_elems);
    EXPECT_EQ(BlockQ5_1::kElems, type_info(Type::Q5_1).block_elems);
    EXPECT_EQ(BlockQ8_0::kElems, type_info(Type::Q8_0).block_elems);
    EXPECT_EQ(BlockQ2K::kElems, type_info(Type::Q2_K).block_elems);
    EXPECT_EQ(BlockQ3K::kElems, type_info(Type::Q3_K).block_elems);
    EXPECT_EQ(BlockQ4K::kElems, type_info(Type::Q4_K).block_elems);
    EXPECT_EQ(BlockQ5K::kElems, type_info(Type::Q5_K).block_elems);
    EXPECT_EQ(BlockQ6K::kElems, type_info(Type::Q6_K).block_elems);
    EXPECT_EQ(BlockQ8K::kElems, type_info(Type::Q8_K).block_elems);
    EXPECT_EQ(BlockIQ4NL::kElems, type_info(Type::IQ4_NL).block_elems);
    EXPECT_EQ(BlockIQ4XS::kElems, type_info(Type::IQ4_XS).block_elems);
    EXPECT_EQ(BlockMXFP4::kElems, type_info(Type::MXFP4).block_elems);
}

TEST(Quant, EveryManifestTypeCanBeConvertedBothWays) {
    for (const ManifestRow& row : testing::read_manifest()) {
        const Type type = *type_from_name(row.type);
        EXPECT_TRUE(can_dequantize(type)) << row.type;
        EXPECT_TRUE(can_quantize(type)) << row.type;
    }
    EXPECT_TRUE(can_dequantize(Type::F32));
    EXPECT_TRUE(can_quantize(Type::F32));
}

TEST(Quant, UnsupportedTypesThrowNamingTheType) {
    EXPECT_FALSE(can_dequantize(Type::IQ2_XXS));
    EXPECT_FALSE(can_quantize(Type::Q8_1));
    std::vector<uint8_t> bytes(1024);
    std::vector<float> floats(256);
    try {
        dequantize_row(Type::IQ2_XXS, bytes.data(), floats.data(), 256);
        FAIL() << "expected hearth::Error";
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("iq2_xxs"), std::string::npos) << error.what();
    }
    EXPECT_THROW(quantize_row(Type::TQ1_0, floats.data(), bytes.data(), 256), Error);
}

TEST(Quant, RowsOfPartialBlocksThrow) {
    std::vector<uint8_t> bytes(1024);
    std::vector<float> floats(512);
    EXPECT_THROW(quantize_row(Type::Q4_K, floats.data(), bytes.data(), 255), Error);
    EXPECT_THROW(dequantize_row(Type::Q4_0, bytes.data(), floats.data(), 33), Error);
}

}  // namespace
}  // namespace hearth::quant
