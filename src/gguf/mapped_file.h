// A read-only memory mapping of a whole file, owning its descriptor and mapping.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

namespace hearth::gguf {

class MappedFile {
  public:
    MappedFile() = default;
    // Throws hearth::Error naming the path and the errno text when the file cannot be mapped.
    static MappedFile open(const std::filesystem::path& path);

    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    std::span<const uint8_t> bytes() const { return {data_, size_}; }
    // Lets the process drop its resident pages wholly inside `range` (a part of bytes()): they
    // stay in the page cache and fault back in if read again. Resident memory then no longer
    // counts data a caller has copied elsewhere.
    void drop_resident_pages(std::span<const uint8_t> range) const;

  private:
    void release() noexcept;

    int fd_ = -1;
    const uint8_t* data_ = nullptr;  // nullptr for an empty file: mmap refuses length 0
    size_t size_ = 0;
};

}  // namespace hearth::gguf
