// Metadata values and the size facts of the format shared by the reader and the writer.
#include <array>
#include <limits>

#include "gguf/format.h"
#include "gguf/gguf.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace hearth::gguf {

std::string_view value_type_name(ValueType type) {
    static constexpr std::array<std::string_view, format::kValueTypeCount> kNames = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    const auto index = static_cast<uint32_t>(type);
    return index < kNames.size() ? kNames[index] : "unknown";
}

bool Value::is_integer() const {
    switch (type()) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::U16:
        case ValueType::I16:
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::U64:
        case ValueType::I64:
            return true;
        default:
            return false;
    }
}

std::optional<int64_t> Value::as_int() const {
    if (!is_integer()) return std::nullopt;
    if (const auto* u = std::get_if<uint64_t>(&data)) {
        if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
        return static_cast<int64_t>(*u);
    }
    return std::visit(
        [](const auto& v) -> int64_t {
            if constexpr (std::is_integral_v<std::decay_t<decltype(v)>>) return static_cast<int64_t>(v);
            return 0;  // unreachable: is_integer() holds
        },
        data);
}

std::optional<double> Value::as_double() const {
    if (const auto* f = std::get_if<float>(&data)) return *f;
    if (const auto* d = std::get_if<double>(&data)) return *d;
    if (const auto* u = std::get_if<uint64_t>(&data)) return static_cast<double>(*u);
    if (auto i = as_int()) return static_cast<double>(*i);
    return std::nullopt;
}

namespace {

template <typename T, typename Items>
Value make_array(ValueType element_type, const Items& items) {
    Array array{element_type, {}};
    array.items.reserve(items.size());
    for (const auto& item : items) array.items.emplace_back(T(item));
    return Value(std::move(array));
}

}  // namespace

Value Value::string_array(std::vector<std::string> items) {
    Array array{ValueType::String, {}};
    array.items.reserve(items.size());
    for (std::string& item : items) array.items.emplace_back(std::move(item));
    return Value(std::move(array));
}

Value Value::float_array(std::span<const float> items) {
    return make_array<float>(ValueType::F32, items);
}

Value Value::int32_array(std::span<const int32_t> items) {
    return make_array<int32_t>(ValueType::I32, items);
}

namespace format {

size_t scalar_size(ValueType type) {
    switch (type) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::Bool:
            return 1;
        case ValueType::U16:
        case ValueType::I16:
            return 2;
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::F32:
            return 4;
        case ValueType::U64:
        case ValueType::I64:
        case ValueType::F64:
            return 8;
        case ValueType::String:
        case ValueType::Array:
            return 0;
    }
    return 0;
}

size_t min_encoded_size(ValueType type) {
    if (type == ValueType::String) return sizeof(uint64_t);
    if (type == ValueType::Array) return sizeof(uint32_t) + sizeof(uint64_t);
    return scalar_size(type);
}

std::optional<uint64_t> tensor_size(std::span<const int64_t> shape, quant::Type type, std::string& problem) {
    if (shape.size() > kMaxDims) {
        problem = fmt::format("{} dimensions, more than {}", shape.size(), kMaxDims);
        return std::nullopt;
    }
    int64_t elements = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] < 1) {
            problem = fmt::format("dimension {} is {}; dimensions must be at least 1", i, shape[i]);
            return std::nullopt;
        }
        if (__builtin_mul_overflow(elements, shape[i], &elements)) {
            problem =
                fmt::format("shape [{}] has more elements than int64 can count", fmt::join(shape, ", "));
            return std::nullopt;
        }
    }
    const int64_t row_length = shape.empty() ? 1 : shape[0];
    const quant::TypeInfo& info = quant::type_info(type);
    if (row_length % info.block_elems != 0) {
        problem = fmt::format("row length {} is not a multiple of the {} block size ({})", row_length,
                              info.name, info.block_elems);
        return std::nullopt;
    }
    // Row bytes and the total are multiplied with overflow checks: a dimension near 2^61 of an
    // 8-byte type would wrap a plain size_t product to a small number.
    uint64_t row_bytes = 0;
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(row_length / info.block_elems), info.block_bytes,
                               &row_bytes) ||
        __builtin_mul_overflow(row_bytes, static_cast<uint64_t>(elements / row_length), &bytes) ||
        bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        problem = fmt::format("shape [{}] of type {} has more bytes than int64 can count",
                              fmt::join(shape, ", "), info.name);
        return std::nullopt;
    }
    return bytes;
}

}  // namespace format

int64_t TensorInfo::element_count() const {
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    return count;
}

}  // namespace hearth::gguf
