#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/error.h"

namespace hearth {
namespace {

constexpr mode_t kNewFileMode = 0644;
// Pieces of 8 MiB: one huge write makes the kernel stage it all at once.
constexpr size_t kWriteChunkBytes = size_t{8} << 20;

}  // namespace

AtomicFile::AtomicFile(const std::filesystem::path& target) : target_(target.string()) {
    directory_ = target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
    std::string temp_name = ".";
    temp_name += target.filename().string();
    temp_name += ".tmp.XXXXXX";
    std::string pattern = (directory_ / temp_name).string();
    fd_ = ::mkstemp(pattern.data());
    if (fd_ < 0) fail_errno("cannot create a temporary file in " + directory_.string());
    temp_path_ = pattern;
    // Keep the mode of a file being replaced; mkstemp alone would leave 0600.
    struct stat existing {};
    const mode_t mode = ::stat(target_.c_str(), &existing) == 0 ? (existing.st_mode & 07777) : kNewFileMode;
    if (::fchmod(fd_, mode) != 0) fail_errno("cannot set the file mode");
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
        const ssize_t written = ::write(fd_, bytes.data(), std::min(bytes.size(), kWriteChunkBytes));
        if (written < 0 && errno == EINTR) continue;
        if (written < 0) fail_errno("cannot write");
        bytes = bytes.subspan(static_cast<size_t>(written));
    }
}

void AtomicFile::write(std::string_view text) {
    write(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

void AtomicFile::commit() {
    if (::fsync(fd_) != 0) fail_errno("cannot fsync");
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail_errno("cannot close");
    if (::rename(temp_path_.c_str(), target_.c_str()) != 0) fail_errno("cannot rename the temporary file over it");
    committed_ = true;
    // The rename is durable only once the directory entry is on disk.
    const int directory = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) fail_errno("written, but cannot open its directory to fsync it");
    const int synced = ::fsync(directory);
    const int saved_errno = errno;
    ::close(directory);
    errno = saved_errno;
    if (synced != 0) fail_errno("written, but cannot fsync its directory");
}

void AtomicFile::fail_errno(std::string_view what) const { fail("{}: {}: {}", target_, what, std::strerror(errno)); }

void write_file_atomically(const std::filesystem::path& target, std::string_view text) {
    AtomicFile file(target);
    file.write(text);
    file.commit();
}

}  // namespace hearth
