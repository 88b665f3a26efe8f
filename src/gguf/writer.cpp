// Writing GGUF v3 exactly as llama.cpp's gguf_write_to_file lays it out: header, metadata in
// insertion order, tensor infos, zeros to the alignment, then each tensor's data followed by
// zeros to the alignment. The file appears at its path only once complete and fsynced.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <utility>

#include "common/atomic_file.h"
#include "common/error.h"
#include "gguf/format.h"
#include "gguf/gguf.h"

namespace hearth::gguf {
namespace {


class Encoder {
  public:
    explicit Encoder(std::string_view who) : who_(who) {}

    std::vector<uint8_t>& bytes() { return bytes_; }
    void set_context(std::string context) { context_ = std::move(context); }

    template <typename T>
    void append(T value) {
        const size_t at = bytes_.size();
        bytes_.resize(at + sizeof(T));
        std::memcpy(bytes_.data() + at, &value, sizeof(T));
    }

    void append_string(std::string_view text) {
        append<uint64_t>(text.size());
        bytes_.insert(bytes_.end(), text.begin(), text.end());
    }

    void append_value(const Value& value, int depth) {
        std::visit(
            [&](const auto& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::string>) {
                    append_string(v);
                } else if constexpr (std::is_same_v<T, Array>) {
                    append_array(v, depth + 1);
                } else if constexpr (std::is_same_v<T, bool>) {
                    append<uint8_t>(v ? 1 : 0);  // GGUF bools are one byte, 0 or 1
                } else {
                    append(v);
                }
            },
            value.data);
    }

    template <typename... Args>
    [[noreturn]] void fail_here(fmt::format_string<Args...> problem, Args&&... args) const {
        fail("{}: {}: {}", who_, context_, fmt::format(problem, std::forward<Args>(args)...));
    }

  private:
    void append_array(const Array& array, int depth) {
        if (depth > format::kMaxArrayNesting)
            fail_here("arrays nest deeper than {} levels", format::kMaxArrayNesting);
        if (static_cast<uint32_t>(array.element_type) >= format::kValueTypeCount) {
            fail_here("array element type {} is not a GGUF value type",
                      static_cast<uint32_t>(array.element_type));
        }
        append(static_cast<uint32_t>(array.element_type));
        append<uint64_t>(array.items.size());
        for (size_t i = 0; i < array.items.size(); ++i) {
            const Value& item = array.items[i];
            if (item.type() != array.element_type) {
                fail_here("array element {} is a {} in an array of {}", i, value_type_name(item.type()),
                          value_type_name(array.element_type));
            }
            append_value(item, depth);
        }
    }

    std::string_view who_;
    std::string context_;
    std::vector<uint8_t> bytes_;
};

// The alignment the file will use: `general.alignment` from the metadata, else `fallback`.
size_t file_alignment(const std::vector<MetadataEntry>& metadata, size_t fallback, std::string_view who) {
    for (const MetadataEntry& entry : metadata) {
        if (entry.key != format::kAlignmentKey) continue;
        const auto* alignment = std::get_if<uint32_t>(&entry.value.data);
        if (alignment == nullptr) {
            fail("{}: metadata key '{}' must be a u32 but is a {}", who, entry.key,
                 value_type_name(entry.value.type()));
        }
        if (!format::is_valid_alignment(*alignment)) {
            fail("{}: metadata key '{}': alignment {} is not a power of two", who, entry.key, *alignment);
        }
        return *alignment;
    }
    return fallback;
}

bool has_key(const std::vector<MetadataEntry>& metadata, std::string_view key) {
    for (const MetadataEntry& entry : metadata) {
        if (entry.key == key) return true;
    }
    return false;
}

std::vector<TensorInfo> plan_tensors(const std::vector<TensorDeclaration>& declarations, size_t alignment,
                                     std::string_view who) {
    std::vector<TensorInfo> tensors;
    tensors.reserve(declarations.size());
    std::unordered_set<std::string_view> names;
    uint64_t offset = 0;
    for (size_t i = 0; i < declarations.size(); ++i) {
        const TensorDeclaration& declared = declarations[i];
        if (declared.name.empty()) fail("{}: tensor #{} has an empty name", who, i);
        if (!names.insert(declared.name).second)
            fail("{}: tensor #{} ('{}') is declared twice", who, i, declared.name);
        std::string problem;
        const std::optional<uint64_t> size = format::tensor_size(declared.shape, declared.type, problem);
        if (!size) fail("{}: tensor #{} ('{}'): {}", who, i, declared.name, problem);
        tensors.push_back({declared.name, declared.shape, declared.type, offset, *size});
        // Sizes are below 2^63 each, so one addition cannot wrap; the running total can.
        offset += format::align_up(*size, alignment);
        if (offset > static_cast<uint64_t>(INT64_MAX)) {
            fail("{}: tensor #{} ('{}') ends past byte 2^63 of the data section", who, i, declared.name);
        }
    }
    return tensors;
}

std::vector<uint8_t> encode_header(const std::vector<MetadataEntry>& metadata,
                                   const std::vector<TensorInfo>& tensors, size_t alignment,
                                   bool add_alignment_key, std::string_view who) {
    Encoder out(who);
    out.append(kMagic);
    out.append(format::kWrittenVersion);
    out.append<uint64_t>(tensors.size());
    out.append<uint64_t>(metadata.size() + (add_alignment_key ? 1 : 0));
    std::unordered_set<std::string_view> keys;
    for (size_t i = 0; i < metadata.size(); ++i) {
        const MetadataEntry& entry = metadata[i];
        out.set_context(fmt::format("metadata key #{} ('{}')", i, entry.key));
        if (entry.key.empty()) out.fail_here("the key is empty");
        if (!keys.insert(entry.key).second) out.fail_here("the key appears twice");
        out.append_string(entry.key);
        out.append(static_cast<uint32_t>(entry.value.type()));
        out.append_value(entry.value, 0);
    }
    if (add_alignment_key) {
        out.append_string(format::kAlignmentKey);
        out.append(static_cast<uint32_t>(ValueType::U32));
        out.append(static_cast<uint32_t>(alignment));
    }
    for (const TensorInfo& tensor : tensors) {
        out.append_string(tensor.name);
        out.append(static_cast<uint32_t>(tensor.shape.size()));
        for (int64_t dim : tensor.shape) out.append(dim);
        out.append(static_cast<uint32_t>(tensor.type));
        out.append(tensor.offset);
    }
    out.bytes().resize(format::align_up(out.bytes().size(), alignment), 0);
    return std::move(out.bytes());
}

constexpr std::string_view kWriterName = "gguf writer";

}  // namespace

Writer::Writer(size_t alignment) : alignment_(alignment) {
    if (!format::is_valid_alignment(alignment) || alignment > UINT32_MAX) {
        fail("{}: alignment {} is not a power of two that fits a u32", kWriterName, alignment);
    }
}

void Writer::add_metadata(std::string key, Value value) {
    metadata_.push_back({std::move(key), std::move(value)});
}
void Writer::add_tensor(TensorDeclaration tensor) {
    tensors_.push_back(std::move(tensor));
}
size_t Writer::tensor_count() const {
    return tensors_.size();
}

std::vector<TensorInfo> Writer::layout() const {
    return plan_tensors(tensors_, file_alignment(metadata_, alignment_, kWriterName), kWriterName);
}

std::vector<uint8_t> Writer::encode_header() const {
    const size_t alignment = file_alignment(metadata_, alignment_, kWriterName);
    const bool add_alignment_key =
        alignment != kDefaultAlignment && !has_key(metadata_, format::kAlignmentKey);
    return gguf::encode_header(metadata_, plan_tensors(tensors_, alignment, kWriterName), alignment,
                               add_alignment_key, kWriterName);
}

void Writer::write(const std::filesystem::path& path, const FillTensor& fill,
                   const Progress& progress) const {
    // One chunk per tensor: the whole tensor arrives in one call.
    write_by_rows(
        path,
        [&](size_t index, const TensorInfo& tensor, int64_t, std::span<uint8_t> rows) {
            if (fill) fill(index, tensor, rows);
        },
        progress, std::numeric_limits<size_t>::max());
}

void Writer::write_by_rows(const std::filesystem::path& path, const FillRows& fill, const Progress& progress,
                           size_t chunk_bytes) const {
    const std::string who = path.string();
    const size_t alignment = file_alignment(metadata_, alignment_, who);
    const bool add_alignment_key =
        alignment != kDefaultAlignment && !has_key(metadata_, format::kAlignmentKey);
    const std::vector<TensorInfo> tensors = plan_tensors(tensors_, alignment, who);
    const std::vector<uint8_t> header =
        gguf::encode_header(metadata_, tensors, alignment, add_alignment_key, who);

    uint64_t bytes_total = header.size();
    for (const TensorInfo& tensor : tensors) bytes_total += format::align_up(tensor.size_bytes, alignment);

    AtomicFile out(path);
    out.write(header);
    uint64_t bytes_done = header.size();
    std::vector<uint8_t> buffer;  // one chunk: the writer's only large allocation
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorInfo& tensor = tensors[i];
        const int64_t rows = std::max<int64_t>(tensor.row_count(), 1);
        const uint64_t row_bytes = tensor.size_bytes / static_cast<uint64_t>(rows);
        const int64_t rows_per_chunk =
            static_cast<int64_t>(std::clamp<uint64_t>(chunk_bytes / std::max<uint64_t>(row_bytes, 1), 1, rows));
        for (int64_t first = 0; first < rows; first += rows_per_chunk) {
            const int64_t count = std::min(rows_per_chunk, rows - first);
            buffer.assign(static_cast<size_t>(count) * row_bytes, 0);
            if (fill) fill(i, tensor, first, std::span(buffer));
            out.write(buffer);
            bytes_done += buffer.size();
        }
        const uint64_t padding = format::align_up(tensor.size_bytes, alignment) - tensor.size_bytes;
        buffer.assign(padding, 0);
        out.write(buffer);
        bytes_done += padding;
        if (progress) progress(bytes_done, bytes_total);
    }
    out.commit();
}

void rewrite(const File& file, const std::filesystem::path& path) {
    Writer writer(file.alignment());
    for (const MetadataEntry& entry : file.metadata()) writer.add_metadata(entry.key, entry.value);
    for (const TensorInfo& tensor : file.tensors())
        writer.add_tensor({tensor.name, tensor.shape, tensor.type});
    writer.write(path, [&](size_t index, const TensorInfo&, std::span<uint8_t> data) {
        const std::span<const uint8_t> source = file.tensor_data(file.tensors()[index]);
        std::memcpy(data.data(), source.data(), data.size());
    });
}

}  // namespace hearth::gguf
