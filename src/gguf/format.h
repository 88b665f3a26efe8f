// Facts of the GGUF layout that the reader and the writer share (internal to src/gguf/).
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "gguf/gguf.h"

namespace hearth::gguf::format {

static_assert(std::endian::native == std::endian::little, "GGUF is read and written as little-endian");

inline constexpr uint32_t kWrittenVersion = 3;
inline constexpr std::string_view kAlignmentKey = "general.alignment";
inline constexpr uint32_t kValueTypeCount = 13;  // U8 .. F64

// llama.cpp allows no arrays of arrays; we allow a few levels and refuse deeper ones so that
// recursion stays bounded on hostile input.
inline constexpr int kMaxArrayNesting = 8;
// Every metadata value costs sizeof(Value) in memory however few bytes it takes in the file;
// this bound keeps a hostile 1-byte-per-element array from costing 40x the file size. Real
// vocabularies hold a few hundred thousand strings.
inline constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 24;

// Bytes of a scalar value of `type`; 0 for String and Array, whose size depends on content.
size_t scalar_size(ValueType type);
// The fewest bytes a value of `type` can take in the file (a string: its u64 length; an
// array: its u32 element type and u64 count).
size_t min_encoded_size(ValueType type);

inline bool is_valid_alignment(uint64_t alignment) {
    return std::has_single_bit(alignment);
}
inline uint64_t align_up(uint64_t offset, uint64_t alignment) {
    return (offset + alignment - 1) / alignment * alignment;
}

// Bytes of a tensor of `type` and `shape` (ggml order), or nullopt with `problem` saying why
// the shape cannot be stored: more than kMaxDims dimensions, a dimension below 1, an element
// count or byte size past int64, a row length that is not a whole number of blocks.
std::optional<uint64_t> tensor_size(std::span<const int64_t> shape, quant::Type type, std::string& problem);

}  // namespace hearth::gguf::format
