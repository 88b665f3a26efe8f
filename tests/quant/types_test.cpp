#include "quant/types.h"

#include <gtest/gtest.h>

namespace hearth::quant {
namespace {

TEST(Types, NamesAreLookedUpIgnoringCase) {
    EXPECT_EQ(type_from_name("Q4_K"), Type::Q4_K);
    EXPECT_EQ(type_from_name("q4_k"), Type::Q4_K);
    EXPECT_EQ(type_from_name("q4_K"), Type::Q4_K);
    EXPECT_EQ(type_from_name("IQ4_XS"), Type::IQ4_XS);
    EXPECT_EQ(type_from_name("bf16"), Type::BF16);
    EXPECT_EQ(type_from_name("MXFP4"), Type::MXFP4);
    EXPECT_EQ(type_from_name("q4_k_m"), std::nullopt);  // a file type (mix), not a tensor type
    EXPECT_EQ(type_from_name(""), std::nullopt);
}

TEST(Types, NamesAreGgmlSpellings) {
    EXPECT_EQ(type_name(Type::Q4_K), "q4_K");
    EXPECT_EQ(type_name(Type::F16), "f16");
    EXPECT_EQ(type_name(Type::IQ4_NL), "iq4_nl");
}

TEST(Types, EveryNameRoundTrips) {
    for (const TypeInfo& info : all_types()) {
        EXPECT_EQ(type_from_name(info.name), info.type) << info.name;
        EXPECT_EQ(&type_info(info.type), &info) << info.name;
    }
}

TEST(Types, IdsGgmlNeverAssignedOrRemovedAreUnknown) {
    for (const uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 43u, 1000u}) {
        EXPECT_EQ(find_type(id), nullptr) << id;
    }
    ASSERT_NE(find_type(12), nullptr);
    EXPECT_EQ(find_type(12)->type, Type::Q4_K);
}

TEST(Types, TypesAreListedInIdOrder) {
    const auto types = all_types();
    for (size_t i = 1; i < types.size(); ++i) {
        EXPECT_LT(static_cast<uint32_t>(types[i - 1].type), static_cast<uint32_t>(types[i].type));
    }
}

TEST(Types, RowBytesCountsWholeBlocks) {
    EXPECT_EQ(row_bytes(Type::F32, 7), 28u);
    EXPECT_EQ(row_bytes(Type::F16, 3), 6u);
    EXPECT_EQ(row_bytes(Type::Q4_0, 64), 36u);
    EXPECT_EQ(row_bytes(Type::Q4_K, 4096), 16u * 144u);
    EXPECT_EQ(row_bytes(Type::Q6_K, 0), 0u);
    EXPECT_EQ(row_bytes(Type::MXFP4, 32), 17u);
}

TEST(Types, RowBytesRejectsPartialBlocksAndNegativeLengths) {
    EXPECT_EQ(row_bytes(Type::Q4_K, 255), std::nullopt);
    EXPECT_EQ(row_bytes(Type::Q8_0, 33), std::nullopt);
    EXPECT_EQ(row_bytes(Type::F32, -1), std::nullopt);
    EXPECT_EQ(row_bytes(Type::F64, int64_t{1} << 61), std::nullopt);  // 2^64 bytes would wrap to 0
}

}  // namespace
}  // namespace hearth::quant
