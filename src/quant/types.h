// Tensor types as ggml numbers them (the ids stored in GGUF tensor infos), with the block
// geometry of every type a GGUF file may hold, so that any file can be validated and sized
// even where hearth cannot yet compute with a type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace hearth::quant {

enum class Type : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
    Q2_0 = 42,
};

struct TypeInfo {
    Type type;
    std::string_view name;  // ggml's spelling: "f16", "q4_K", "iq4_xs"
    int64_t block_elems;    // elements per block (1 for plain floats and ints)
    size_t block_bytes;     // bytes per block
};

// Every type a GGUF may name, in id order.
std::span<const TypeInfo> all_types();

// nullptr for ids ggml never assigned or has removed (4, 5, 31-33, 36-38, >= 43).
const TypeInfo* find_type(uint32_t id);

const TypeInfo& type_info(Type type);

inline std::string_view type_name(Type type) { return type_info(type).name; }

// Case-insensitive: "Q4_K", "q4_k" and "q4_K" all name Q4_K.
std::optional<Type> type_from_name(std::string_view name);

// Whether the type stores blocks of scaled integers (Q4_K, IQ4_XS...) rather than plain numbers.
bool is_quantized(Type type);

// Bytes of a row of n elements; nullopt when n is not a whole number of blocks or the size overflows.
std::optional<size_t> row_bytes(Type type, int64_t n);

}  // namespace hearth::quant
