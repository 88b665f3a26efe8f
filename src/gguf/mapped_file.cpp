#include "gguf/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "common/error.h"

namespace hearth::gguf {

MappedFile MappedFile::open(const std::filesystem::path& path) {
    MappedFile file;
    file.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (file.fd_ < 0) fail("{}: cannot open: {}", path.string(), std::strerror(errno));

    struct stat info {};
    if (::fstat(file.fd_, &info) != 0) fail("{}: cannot stat: {}", path.string(), std::strerror(errno));
    if (!S_ISREG(info.st_mode)) fail("{}: not a regular file", path.string());

    file.size_ = static_cast<size_t>(info.st_size);
    if (file.size_ == 0) return file;
    // Private and read-only: tensor data is paged in only when a caller touches it.
    void* data = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, file.fd_, 0);
    if (data == MAP_FAILED)
        fail("{}: cannot mmap {} bytes: {}", path.string(), file.size_, std::strerror(errno));
    file.data_ = static_cast<const uint8_t*>(data);
    return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        release();
        fd_ = std::exchange(other.fd_, -1);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void MappedFile::drop_resident_pages(std::span<const uint8_t> range) const {
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<uintptr_t>(range.data()) + page - 1) / page * page;
    const auto end = (reinterpret_cast<uintptr_t>(range.data()) + range.size()) / page * page;
    if (data_ == nullptr || range.data() < data_ || range.data() + range.size() > data_ + size_ || end <= begin)
        return;
    // Advice only: a private read-only file mapping gives the same bytes back from the file.
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    release();
}

void MappedFile::release() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
    data_ = nullptr;
    fd_ = -1;
    size_ = 0;
}

}  // namespace hearth::gguf
