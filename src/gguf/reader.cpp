// Reading GGUF v2/v3. Every count and length is checked against the bytes that remain before
// anything is allocated for it, so hostile input costs at most memory proportional to its size.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <numeric>
#include <unordered_map>

#include "common/error.h"
#include "gguf/format.h"
#include "gguf/gguf.h"
#include "gguf/mapped_file.h"

namespace hearth::gguf {

namespace detail {

// Everything an opened file holds; File::State is this (File keeps the name private).
struct FileContents {
    std::string name;
    MappedFile mapping;  // empty when parsing caller-owned bytes
    std::span<const uint8_t> bytes;
    uint32_t version = 0;
    size_t alignment = kDefaultAlignment;
    uint64_t data_offset = 0;
    std::vector<MetadataEntry> metadata;
    std::vector<TensorInfo> tensors;
    // Views into the strings of `metadata` and `tensors`, built once those vectors are complete.
    std::unordered_map<std::string_view, size_t> metadata_index;
    std::unordered_map<std::string_view, size_t> tensor_index;
};

}  // namespace detail

struct File::State : detail::FileContents {};

namespace {

// The fewest bytes a metadata entry (u64 key length, one key byte, u32 type, a u8 value) and a
// tensor info (u64 name length, u32 n_dims, u32 type, u64 offset) take.
constexpr uint64_t kMinMetadataEntryBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
constexpr uint64_t kVersionOffset = 4;

// Reads little-endian fields from the bytes; every failure names the file, the current
// context (which key or tensor), the field and its byte offset.
class Cursor {
  public:
    Cursor(std::span<const uint8_t> bytes, const std::string& file) : bytes_(bytes), file_(file) {}

    uint64_t offset() const { return offset_; }
    uint64_t remaining() const { return bytes_.size() - offset_; }
    uint64_t size() const { return bytes_.size(); }
    void set_context(std::string context) { context_ = std::move(context); }

    template <typename... Args>
    [[noreturn]] void fail_at(uint64_t at, std::string_view subject, fmt::format_string<Args...> problem,
                              Args&&... args) const {
        fail("{}: {}: {} at byte {} {}", file_, context_, subject, at,
             fmt::format(problem, std::forward<Args>(args)...));
    }

    template <typename T>
    T read(std::string_view field) {
        if (remaining() < sizeof(T)) {
            fail_at(offset_, field, "needs {} bytes but the file ends at byte {}", sizeof(T), size());
        }
        T value;
        std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
        offset_ += sizeof(T);
        return value;
    }

    std::string read_string(std::string_view field) {
        const uint64_t at = offset_;
        if (remaining() < sizeof(uint64_t)) {  // checked here so that no message is formatted per string
            fail_at(at, fmt::format("{} length", field), "needs 8 bytes but the file ends at byte {}",
                    size());
        }
        const auto length = read<uint64_t>(field);
        if (length > remaining()) {
            fail_at(at, fmt::format("{} length {}", field, length),
                    "runs past the end of the file ({} bytes)", size());
        }
        std::string text(reinterpret_cast<const char*>(bytes_.data() + offset_), length);
        offset_ += length;
        return text;
    }

  private:
    std::span<const uint8_t> bytes_;
    const std::string& file_;
    std::string context_ = "header";
    uint64_t offset_ = 0;
};

class Parser {
  public:
    explicit Parser(detail::FileContents& state) : state_(state), cursor_(state.bytes, state.name) {}

    void parse() {
        const auto [tensor_count, metadata_count] = parse_header();
        for (uint64_t i = 0; i < metadata_count; ++i) parse_metadata_entry(i);
        index_metadata();
        state_.alignment = read_alignment();
        for (uint64_t i = 0; i < tensor_count; ++i) parse_tensor_info(i);
        index_tensors();
        check_tensor_layout();
    }

  private:
    std::pair<uint64_t, uint64_t> parse_header() {
        const auto magic = cursor_.read<uint32_t>("magic");
        if (magic != kMagic) {
            std::string shown(reinterpret_cast<const char*>(&magic), sizeof(magic));
            for (char& c : shown) c = std::isprint(static_cast<unsigned char>(c)) ? c : '?';
            cursor_.fail_at(0, fmt::format("magic '{}'", shown), "is not 'GGUF': not a GGUF file");
        }
        state_.version = cursor_.read<uint32_t>("version");
        if (state_.version == 1) {
            cursor_.fail_at(kVersionOffset, "GGUF version 1",
                            "is no longer supported (hearth reads v2 and v3)");
        }
        if ((state_.version & 0xFFFF) == 0) {
            cursor_.fail_at(kVersionOffset, fmt::format("version {:#x}", state_.version),
                            "looks byte-swapped: big-endian GGUF files are not supported");
        }
        if (state_.version != 2 && state_.version != 3) {
            cursor_.fail_at(kVersionOffset, fmt::format("GGUF version {}", state_.version),
                            "is not supported (hearth reads v2 and v3)");
        }
        const uint64_t counts_at = cursor_.offset();
        const auto tensor_count = cursor_.read<uint64_t>("tensor count");
        const auto metadata_count = cursor_.read<uint64_t>("metadata count");
        check_count(counts_at, "tensor count", tensor_count, kMinTensorInfoBytes);
        check_count(counts_at + 8, "metadata count", metadata_count, kMinMetadataEntryBytes);
        return {tensor_count, metadata_count};
    }

    void check_count(uint64_t at, std::string_view what, uint64_t count, uint64_t min_bytes_each) const {
        if (count > cursor_.remaining() / min_bytes_each) {
            cursor_.fail_at(at, fmt::format("{} {}", what, count),
                            "needs at least {} bytes each but only {} bytes remain in the file ({} bytes)",
                            min_bytes_each, cursor_.remaining(), cursor_.size());
        }
    }

    void parse_metadata_entry(uint64_t index) {
        cursor_.set_context(fmt::format("metadata key #{}", index));
        const uint64_t at = cursor_.offset();
        std::string key = cursor_.read_string("key");
        if (key.empty()) cursor_.fail_at(at, "key", "is empty");
        cursor_.set_context(fmt::format("metadata key #{} ('{}')", index, key));
        const ValueType type = read_value_type("value type");
        state_.metadata.push_back({std::move(key), parse_value(type, 0)});
        entry_offsets_.push_back(at);
    }

    ValueType read_value_type(std::string_view field) {
        const uint64_t at = cursor_.offset();
        const auto id = cursor_.read<uint32_t>(field);
        if (id >= format::kValueTypeCount) {
            cursor_.fail_at(at, fmt::format("{} {}", field, id), "is not a GGUF value type (0 to {})",
                            format::kValueTypeCount - 1);
        }
        return static_cast<ValueType>(id);
    }

    Value parse_value(ValueType type, int depth) {
        switch (type) {
            case ValueType::U8:
                return cursor_.read<uint8_t>("u8 value");
            case ValueType::I8:
                return cursor_.read<int8_t>("i8 value");
            case ValueType::U16:
                return cursor_.read<uint16_t>("u16 value");
            case ValueType::I16:
                return cursor_.read<int16_t>("i16 value");
            case ValueType::U32:
                return cursor_.read<uint32_t>("u32 value");
            case ValueType::I32:
                return cursor_.read<int32_t>("i32 value");
            case ValueType::F32:
                return cursor_.read<float>("f32 value");
            case ValueType::U64:
                return cursor_.read<uint64_t>("u64 value");
            case ValueType::I64:
                return cursor_.read<int64_t>("i64 value");
            case ValueType::F64:
                return cursor_.read<double>("f64 value");
            case ValueType::String:
                return cursor_.read_string("string");
            case ValueType::Array:
                return parse_array(depth + 1);
            case ValueType::Bool: {
                const uint64_t at = cursor_.offset();
                const auto byte = cursor_.read<uint8_t>("bool value");
                if (byte > 1) cursor_.fail_at(at, fmt::format("bool value {}", byte), "is neither 0 nor 1");
                return byte == 1;
            }
        }
        cursor_.fail_at(cursor_.offset(), "value", "has no type");  // unreachable: types are checked on read
    }

    Value parse_array(int depth) {
        const uint64_t at = cursor_.offset();
        if (depth > format::kMaxArrayNesting) {
            cursor_.fail_at(at, "array", "nests deeper than {} levels", format::kMaxArrayNesting);
        }
        Array array{read_value_type("array element type"), {}};
        const uint64_t count_at = cursor_.offset();
        const auto count = cursor_.read<uint64_t>("array count");
        if (count > cursor_.remaining() / format::min_encoded_size(array.element_type)) {
            cursor_.fail_at(count_at, fmt::format("array count {}", count),
                            "runs past the end of the file ({} bytes)", cursor_.size());
        }
        if (count > values_left_) {
            cursor_.fail_at(count_at, fmt::format("array count {}", count),
                            "passes the limit of {} metadata values in a file", format::kMaxMetadataValues);
        }
        values_left_ -= count;
        array.items.reserve(count);
        for (uint64_t i = 0; i < count; ++i) array.items.push_back(parse_value(array.element_type, depth));
        return array;
    }

    void index_metadata() {
        const std::vector<MetadataEntry>& metadata = state_.metadata;
        for (size_t i = 0; i < metadata.size(); ++i) {
            const auto [it, inserted] = state_.metadata_index.emplace(metadata[i].key, i);
            if (!inserted) {
                fail("{}: metadata key #{} ('{}') at byte {} repeats metadata key #{}", state_.name, i,
                     metadata[i].key, entry_offsets_[i], it->second);
            }
        }
    }

    size_t read_alignment() const {
        const auto it = state_.metadata_index.find(format::kAlignmentKey);
        if (it == state_.metadata_index.end()) return kDefaultAlignment;
        const Value& value = state_.metadata[it->second].value;
        const auto fail_alignment = [&](std::string_view problem) {
            fail("{}: metadata key #{} ('{}') at byte {}: {}", state_.name, it->second, format::kAlignmentKey,
                 entry_offsets_[it->second], problem);
        };
        const auto* alignment = std::get_if<uint32_t>(&value.data);
        if (alignment == nullptr) {
            fail_alignment(
                fmt::format("the alignment must be a u32 but is a {}", value_type_name(value.type())));
        }
        if (!format::is_valid_alignment(*alignment)) {
            fail_alignment(fmt::format("alignment {} is not a power of two", *alignment));
        }
        return *alignment;
    }

    void parse_tensor_info(uint64_t index) {
        cursor_.set_context(fmt::format("tensor #{}", index));
        const uint64_t at = cursor_.offset();
        TensorInfo tensor;
        tensor.name = cursor_.read_string("name");
        if (tensor.name.empty()) cursor_.fail_at(at, "name", "is empty");
        cursor_.set_context(fmt::format("tensor #{} ('{}')", index, tensor.name));

        const uint64_t n_dims_at = cursor_.offset();
        const auto n_dims = cursor_.read<uint32_t>("n_dims");
        if (n_dims > kMaxDims)
            cursor_.fail_at(n_dims_at, fmt::format("n_dims {}", n_dims), "is more than {}", kMaxDims);
        const uint64_t shape_at = cursor_.offset();
        if (cursor_.remaining() < uint64_t{n_dims} * sizeof(int64_t)) {
            cursor_.fail_at(shape_at, fmt::format("{} dimensions", n_dims),
                            "need {} bytes but the file ends at byte {}", n_dims * sizeof(int64_t),
                            cursor_.size());
        }
        for (uint32_t i = 0; i < n_dims; ++i) tensor.shape.push_back(cursor_.read<int64_t>("dimension"));

        const uint64_t type_at = cursor_.offset();
        const auto type_id = cursor_.read<uint32_t>("type");
        const quant::TypeInfo* type = quant::find_type(type_id);
        if (type == nullptr)
            cursor_.fail_at(type_at, fmt::format("type {}", type_id), "is not a known ggml type");
        tensor.type = type->type;

        std::string problem;
        const std::optional<uint64_t> size = format::tensor_size(tensor.shape, tensor.type, problem);
        if (!size) cursor_.fail_at(shape_at, "shape", "is invalid: {}", problem);
        tensor.size_bytes = *size;

        const uint64_t offset_at = cursor_.offset();
        tensor.offset = cursor_.read<uint64_t>("data offset");
        if (tensor.offset % state_.alignment != 0) {
            cursor_.fail_at(offset_at, fmt::format("data offset {}", tensor.offset),
                            "is not a multiple of the alignment ({})", state_.alignment);
        }
        state_.tensors.push_back(std::move(tensor));
        tensor_offsets_.push_back(at);
    }

    void index_tensors() {
        const std::vector<TensorInfo>& tensors = state_.tensors;
        for (size_t i = 0; i < tensors.size(); ++i) {
            const auto [it, inserted] = state_.tensor_index.emplace(tensors[i].name, i);
            if (!inserted) {
                fail("{}: tensor #{} ('{}') at byte {} has the same name as tensor #{}", state_.name, i,
                     tensors[i].name, tensor_offsets_[i], it->second);
            }
        }
    }

    // The data section starts at the tensor table's end padded to the alignment; every tensor
    // must lie inside the file, and no two may share bytes.
    void check_tensor_layout() {
        const std::vector<TensorInfo>& tensors = state_.tensors;
        const uint64_t table_end = cursor_.offset();
        state_.data_offset = format::align_up(table_end, state_.alignment);
        if (tensors.empty()) return;
        const uint64_t file_size = cursor_.size();
        if (state_.data_offset > file_size) {
            fail(
                "{}: the tensor data section starts at byte {} (the tensor table ends at byte {}, padded to "
                "the "
                "alignment {}) but the file has {} bytes",
                state_.name, state_.data_offset, table_end, state_.alignment, file_size);
        }
        const uint64_t data_size = file_size - state_.data_offset;
        for (size_t i = 0; i < tensors.size(); ++i) {
            const TensorInfo& t = tensors[i];
            if (t.offset > data_size || t.size_bytes > data_size - t.offset) {
                fail(
                    "{}: tensor #{} ('{}') at byte {}: data offset {} + {} bytes runs past the end of the "
                    "file "
                    "({} bytes, data section from byte {})",
                    state_.name, i, t.name, tensor_offsets_[i], t.offset, t.size_bytes, file_size,
                    state_.data_offset);
            }
        }
        std::vector<size_t> order(tensors.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(),
                  [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
        for (size_t k = 1; k < order.size(); ++k) {
            const TensorInfo& before = tensors[order[k - 1]];
            const TensorInfo& after = tensors[order[k]];
            if (before.offset + before.size_bytes > after.offset) {
                fail(
                    "{}: tensor #{} ('{}') at byte {}: data offset {} overlaps tensor #{} ('{}'), which "
                    "spans data "
                    "offsets {} to {}",
                    state_.name, order[k], after.name, tensor_offsets_[order[k]], after.offset, order[k - 1],
                    before.name, before.offset, before.offset + before.size_bytes);
            }
        }
    }

    detail::FileContents& state_;
    Cursor cursor_;
    uint64_t values_left_ = format::kMaxMetadataValues;
    std::vector<uint64_t> entry_offsets_;   // byte offset of each metadata entry, for errors
    std::vector<uint64_t> tensor_offsets_;  // byte offset of each tensor info, for errors
};

}  // namespace

File File::open(const std::filesystem::path& path) {
    auto state = std::make_unique<State>();
    state->name = path.string();
    state->mapping = MappedFile::open(path);
    state->bytes = state->mapping.bytes();
    Parser(*state).parse();
    return File(std::move(state));
}

File File::parse(std::span<const uint8_t> bytes, std::string name) {
    auto state = std::make_unique<State>();
    state->name = std::move(name);
    state->bytes = bytes;
    Parser(*state).parse();
    return File(std::move(state));
}

File::File(std::unique_ptr<State> state) : state_(std::move(state)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

const std::string& File::name() const {
    return state_->name;
}
uint32_t File::version() const {
    return state_->version;
}
size_t File::alignment() const {
    return state_->alignment;
}
uint64_t File::file_size() const {
    return state_->bytes.size();
}
uint64_t File::data_section_offset() const {
    return state_->data_offset;
}
const std::vector<MetadataEntry>& File::metadata() const {
    return state_->metadata;
}
const std::vector<TensorInfo>& File::tensors() const {
    return state_->tensors;
}

const Value* File::find(std::string_view key) const {
    const auto it = state_->metadata_index.find(key);
    return it == state_->metadata_index.end() ? nullptr : &state_->metadata[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    const auto it = state_->tensor_index.find(name);
    return it == state_->tensor_index.end() ? nullptr : &state_->tensors[it->second];
}

void File::drop_resident_pages(std::span<const uint8_t> data) const { state_->mapping.drop_resident_pages(data); }

std::span<const uint8_t> File::tensor_data(const TensorInfo& tensor) const {
    const uint64_t data_size = file_size() - std::min(file_size(), state_->data_offset);
    if (tensor.offset > data_size || tensor.size_bytes > data_size - tensor.offset) {
        fail("{}: tensor '{}' (data offset {}, {} bytes) is not inside this file's data section", name(),
             tensor.name, tensor.offset, tensor.size_bytes);
    }
    return state_->bytes.subspan(state_->data_offset + tensor.offset, tensor.size_bytes);
}

namespace {

// A metadata value looked up by a typed getter: missing keys and wrong types are errors.
template <typename T>
T require(const File& file, std::string_view key, std::string_view wanted, std::optional<T> value) {
    const Value* found = file.find(key);
    if (found == nullptr) fail("{}: metadata key '{}' is missing", file.name(), key);
    if (!value) {
        fail("{}: metadata key '{}' is a {}, not {}", file.name(), key, value_type_name(found->type()),
             wanted);
    }
    return *value;
}

}  // namespace

std::optional<std::string> File::find_string(std::string_view key) const {
    const Value* value = find(key);
    if (value == nullptr) return std::nullopt;
    const std::string* text = value->as_string();
    return require<std::string>(*this, key, "a string", text ? std::optional(*text) : std::nullopt);
}

std::optional<int64_t> File::find_int(std::string_view key) const {
    const Value* value = find(key);
    if (value == nullptr) return std::nullopt;
    return require(*this, key, "an integer that fits int64", value->as_int());
}

std::optional<double> File::find_float(std::string_view key) const {
    const Value* value = find(key);
    if (value == nullptr) return std::nullopt;
    return require(*this, key, "a number", value->as_double());
}

std::string File::get_string(std::string_view key) const {
    return require(*this, key, "a string", find_string(key));
}

int64_t File::get_int(std::string_view key) const {
    return require(*this, key, "an integer that fits int64", find_int(key));
}

double File::get_float(std::string_view key) const {
    return require(*this, key, "a number", find_float(key));
}

const Array& File::get_array(std::string_view key) const {
    const Value* value = find(key);
    const Array* array = value ? value->as_array() : nullptr;
    return *require<const Array*>(*this, key, "an array", array ? std::optional(array) : std::nullopt);
}

}  // namespace hearth::gguf
