// Helpers shared by the gguf tests: a byte builder for hand-made files, a per-test temporary
// folder, and a check that parsing fails with a message naming the right field.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "gguf/gguf.h"

namespace hearth::gguf::testing {

// Little-endian GGUF fields appended one by one, for files the Writer would refuse to make.
struct Bytes {
    std::vector<uint8_t> data;

    template <typename T>
    Bytes& put(T value) {
        const size_t at = data.size();
        data.resize(at + sizeof(T));
        std::memcpy(data.data() + at, &value, sizeof(T));
        return *this;
    }
    Bytes& u32(uint32_t v) { return put(v); }
    Bytes& u64(uint64_t v) { return put(v); }
    Bytes& str(std::string_view text) {
        u64(text.size());
        data.insert(data.end(), text.begin(), text.end());
        return *this;
    }
    Bytes& header(uint32_t version, uint64_t tensor_count, uint64_t metadata_count) {
        return u32(kMagic).u32(version).u64(tensor_count).u64(metadata_count);
    }
    Bytes& key(std::string_view name, ValueType type) { return str(name).u32(static_cast<uint32_t>(type)); }
    Bytes& tensor(std::string_view name, std::initializer_list<int64_t> shape, uint32_t type,
                  uint64_t offset) {
        str(name).u32(static_cast<uint32_t>(shape.size()));
        for (int64_t dim : shape) put(dim);
        return u32(type).u64(offset);
    }
    Bytes& pad_to(size_t alignment) {
        data.resize((data.size() + alignment - 1) / alignment * alignment, 0);
        return *this;
    }
    Bytes& zeros(size_t count) {
        data.resize(data.size() + count, 0);
        return *this;
    }
};

// A fresh folder under the system temp directory, removed with everything in it at the end.
class TempDir {
  public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "hearth-gguf-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }
    size_t entry_count() const {
        return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(path_), {}));
    }

  private:
    std::filesystem::path path_;
};

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Parsing `bytes` must throw hearth::Error whose message names the file and holds every part.
inline void expect_parse_error(const std::vector<uint8_t>& bytes,
                               std::initializer_list<std::string_view> parts) {
    constexpr std::string_view kName = "hostile.gguf";
    try {
        File::parse(bytes, std::string(kName));
        ADD_FAILURE() << "parsed without error; expected: " << *parts.begin();
    } catch (const hearth::Error& error) {
        const std::string message = error.what();
        EXPECT_EQ(message.rfind(std::string(kName) + ": ", 0), 0u) << message;
        for (std::string_view part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
    }
}

}  // namespace hearth::gguf::testing
