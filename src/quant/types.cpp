#include "quant/types.h"

#include <array>
#include <limits>

#include "common/strings.h"

namespace hearth::quant {
namespace {

constexpr int64_t kSuperBlock = 256;  // QK_K: elements per K-quant and IQ super-block

// Block sizes from ggml-common.h; each is checked again by the block struct of the types
// hearth computes with (see blocks.h).
constexpr std::array kTypes = {
    TypeInfo{Type::F32, "f32", 1, 4},
    TypeInfo{Type::F16, "f16", 1, 2},
    TypeInfo{Type::Q4_0, "q4_0", 32, 18},
    TypeInfo{Type::Q4_1, "q4_1", 32, 20},
    TypeInfo{Type::Q5_0, "q5_0", 32, 22},
    TypeInfo{Type::Q5_1, "q5_1", 32, 24},
    TypeInfo{Type::Q8_0, "q8_0", 32, 34},
    TypeInfo{Type::Q8_1, "q8_1", 32, 36},
    TypeInfo{Type::Q2_K, "q2_K", kSuperBlock, 84},
    TypeInfo{Type::Q3_K, "q3_K", kSuperBlock, 110},
    TypeInfo{Type::Q4_K, "q4_K", kSuperBlock, 144},
    TypeInfo{Type::Q5_K, "q5_K", kSuperBlock, 176},
    TypeInfo{Type::Q6_K, "q6_K", kSuperBlock, 210},
    TypeInfo{Type::Q8_K, "q8_K", kSuperBlock, 292},
    TypeInfo{Type::IQ2_XXS, "iq2_xxs", kSuperBlock, 66},
    TypeInfo{Type::IQ2_XS, "iq2_xs", kSuperBlock, 74},
    TypeInfo{Type::IQ3_XXS, "iq3_xxs", kSuperBlock, 98},
    TypeInfo{Type::IQ1_S, "iq1_s", kSuperBlock, 50},
    TypeInfo{Type::IQ4_NL, "iq4_nl", 32, 18},
    TypeInfo{Type::IQ3_S, "iq3_s", kSuperBlock, 110},
    TypeInfo{Type::IQ2_S, "iq2_s", kSuperBlock, 82},
    TypeInfo{Type::IQ4_XS, "iq4_xs", kSuperBlock, 136},
    TypeInfo{Type::I8, "i8", 1, 1},
    TypeInfo{Type::I16, "i16", 1, 2},
    TypeInfo{Type::I32, "i32", 1, 4},
    TypeInfo{Type::I64, "i64", 1, 8},
    TypeInfo{Type::F64, "f64", 1, 8},
    TypeInfo{Type::IQ1_M, "iq1_m", kSuperBlock, 56},
    TypeInfo{Type::BF16, "bf16", 1, 2},
    TypeInfo{Type::TQ1_0, "tq1_0", kSuperBlock, 54},
    TypeInfo{Type::TQ2_0, "tq2_0", kSuperBlock, 66},
    TypeInfo{Type::MXFP4, "mxfp4", 32, 17},
    TypeInfo{Type::NVFP4, "nvfp4", 64, 36},
    TypeInfo{Type::Q1_0, "q1_0", 128, 18},
    TypeInfo{Type::Q2_0, "q2_0", 64, 18},
};

}  // namespace

std::span<const TypeInfo> all_types() { return kTypes; }

const TypeInfo* find_type(uint32_t id) {
    for (const TypeInfo& info : kTypes) {
        if (static_cast<uint32_t>(info.type) == id) return &info;
    }
    return nullptr;
}

const TypeInfo& type_info(Type type) { return *find_type(static_cast<uint32_t>(type)); }

std::optional<Type> type_from_name(std::string_view name) {
    for (const TypeInfo& info : kTypes) {
        if (equal_ignoring_case(info.name, name)) return info.type;
    }
    return std::nullopt;
}

bool is_quantized(Type type) {
    const TypeInfo& info = type_info(type);
    return info.block_elems > 1;  // plain floats and ints are one element per "block"
}

std::optional<size_t> row_bytes(Type type, int64_t n) {
    const TypeInfo& info = type_info(type);
    if (n < 0 || n % info.block_elems != 0) return std::nullopt;
    const uint64_t blocks = static_cast<uint64_t>(n / info.block_elems);
    if (blocks > std::numeric_limits<uint64_t>::max() / info.block_bytes) return std::nullopt;  // no wrap-around
    return static_cast<size_t>(blocks * info.block_bytes);
}

}  // namespace hearth::quant
