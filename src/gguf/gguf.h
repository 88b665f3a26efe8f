// GGUF v2/v3: reading by mmap (zero-copy, every field validated before use) and writing v3
// atomically. The layout (little-endian):
//   magic "GGUF", u32 version, u64 tensor_count, u64 metadata_count,
//   metadata: { string key, u32 value_type, value }*,
//   tensor infos: { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset }*,
//   zero padding to `general.alignment` (default 32), then the tensor data section; each
//   tensor's offset is relative to the section start and a multiple of the alignment.
// Strings are u64 length + bytes (no terminator). Arrays are u32 element type + u64 count +
// elements; arrays of arrays are allowed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "quant/types.h"

namespace hearth::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr size_t kDefaultAlignment = 32;
inline constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

std::string_view value_type_name(ValueType type);

struct Value;

struct Array {
    ValueType element_type = ValueType::U8;
    std::vector<Value> items;

    friend bool operator==(const Array&, const Array&) = default;
};

// One metadata value. The variant's alternative index equals its ValueType.
struct Value {
    using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                                 std::string, Array, uint64_t, int64_t, double>;
    Storage data;

    Value() = default;
    template <typename T>
    Value(T v) : data(std::move(v)) {}
    Value(const char* s) : data(std::string(s)) {}

    ValueType type() const { return static_cast<ValueType>(data.index()); }
    bool is_integer() const;
    // The value as a signed / floating number when it is any integer (or float) type.
    std::optional<int64_t> as_int() const;
    std::optional<double> as_double() const;
    const std::string* as_string() const { return std::get_if<std::string>(&data); }
    const Array* as_array() const { return std::get_if<Array>(&data); }

    // Array helpers for building metadata.
    static Value string_array(std::vector<std::string> items);
    static Value float_array(std::span<const float> items);
    static Value int32_array(std::span<const int32_t> items);

    friend bool operator==(const Value&, const Value&) = default;
};

struct MetadataEntry {
    std::string key;
    Value value;
};

struct TensorInfo {
    std::string name;
    std::vector<int64_t> shape;  // ggml order: shape[0] is the row length (ne0)
    quant::Type type = quant::Type::F32;
    uint64_t offset = 0;  // from the start of the data section
    uint64_t size_bytes = 0;

    int64_t element_count() const;
    int64_t row_length() const { return shape.empty() ? 1 : shape[0]; }
    int64_t row_count() const { return row_length() == 0 ? 0 : element_count() / row_length(); }
};

// An opened GGUF file. Metadata and tensor infos are parsed and validated at open; tensor
// data is never read until a caller touches the returned spans (they point into the mmap).
class File {
  public:
    // Throws hearth::Error naming the file, the field and its byte offset on any defect.
    static File open(const std::filesystem::path& path);
    // Parses bytes the caller keeps alive (tests, fuzzing); `name` appears in errors.
    static File parse(std::span<const uint8_t> bytes, std::string name);

    File(File&&) noexcept;
    File& operator=(File&&) noexcept;
    ~File();

    const std::string& name() const;
    uint32_t version() const;
    size_t alignment() const;
    uint64_t file_size() const;
    uint64_t data_section_offset() const;  // absolute byte offset of the tensor data section

    const std::vector<MetadataEntry>& metadata() const;
    const Value* find(std::string_view key) const;
    // Typed getters: throw hearth::Error naming the key when it is missing or of another type.
    // The find_ variants return nullopt for a missing key and throw for one of another type.
    std::string get_string(std::string_view key) const;
    int64_t get_int(std::string_view key) const;
    double get_float(std::string_view key) const;
    const Array& get_array(std::string_view key) const;
    std::optional<std::string> find_string(std::string_view key) const;
    std::optional<int64_t> find_int(std::string_view key) const;
    std::optional<double> find_float(std::string_view key) const;

    const std::vector<TensorInfo>& tensors() const;
    const TensorInfo* find_tensor(std::string_view name) const;
    std::span<const uint8_t> tensor_data(const TensorInfo& tensor) const;
    // For a file opened from disk, lets the process drop its resident pages of `data` (a part of
    // the file's bytes, e.g. a tensor a backend has copied); they are read again if touched.
    // Does nothing for parsed caller-owned bytes.
    void drop_resident_pages(std::span<const uint8_t> data) const;

  private:
    struct State;
    explicit File(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

// Declares a tensor for the Writer; the Writer computes offsets and sizes.
struct TensorDeclaration {
    std::string name;
    std::vector<int64_t> shape;
    quant::Type type = quant::Type::F32;
};

// Writes a GGUF v3 file atomically: everything goes to a temporary file beside the target,
// which is fsynced and renamed over it only when complete. Tensor data is produced one
// tensor at a time by a callback, so writing needs memory for one tensor, not the model.
//
// The alignment is `general.alignment` when the metadata holds it (it must be a u32 power of
// two); otherwise the constructor's, and a value other than the default is then added to the
// metadata as `general.alignment` so that readers lay the file out the same way.
class Writer {
  public:
    explicit Writer(size_t alignment = kDefaultAlignment);

    void add_metadata(std::string key, Value value);
    void add_tensor(TensorDeclaration tensor);
    size_t tensor_count() const;

    using FillTensor = std::function<void(size_t index, const TensorInfo& tensor, std::span<uint8_t> data)>;
    using Progress = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;
    // `fill` must write all of `data` (it arrives zeroed). Throws hearth::Error on any I/O
    // failure (disk full included), leaving no file at `path` and no temporary behind.
    void write(const std::filesystem::path& path, const FillTensor& fill,
               const Progress& progress = {}) const;

    // The same, but tensor data is produced a few rows at a time (whole rows, at most about
    // `chunk_bytes` a call, one row at the least), so memory stays at one chunk and the chunk
    // stays in cache between being produced and being written.
    using FillRows = std::function<void(size_t index, const TensorInfo& tensor, int64_t first_row,
                                        std::span<uint8_t> rows)>;
    static constexpr size_t kDefaultChunkBytes = size_t{4} << 20;
    void write_by_rows(const std::filesystem::path& path, const FillRows& fill, const Progress& progress = {},
                       size_t chunk_bytes = kDefaultChunkBytes) const;

    // The tensor infos with offsets as write() will lay them out.
    std::vector<TensorInfo> layout() const;
    // The bytes write() puts before the tensor data section: header, metadata, tensor table
    // and the zero padding to the alignment (for tools and benchmarks that lay out data
    // themselves).
    std::vector<uint8_t> encode_header() const;

  private:
    size_t alignment_;
    std::vector<MetadataEntry> metadata_;
    std::vector<TensorDeclaration> tensors_;
};

// Writes `file` back out with the same metadata, tensor order and data (used by round-trip
// tests and by tools that only edit metadata).
void rewrite(const File& file, const std::filesystem::path& path);

}  // namespace hearth::gguf
