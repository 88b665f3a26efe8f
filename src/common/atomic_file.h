// Files that appear whole or not at all: the bytes go to a temporary file beside the target,
// which is fsynced and renamed over it only by commit(). A failure (a full disk, a crash, an
// exception before commit) leaves the target as it was and no temporary file behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace hearth {

class AtomicFile {
  public:
    // Creates the temporary file; throws hearth::Error (naming the target) when it cannot.
    explicit AtomicFile(const std::filesystem::path& target);
    ~AtomicFile();  // unlinks the temporary file unless committed

    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(std::span<const uint8_t> bytes);
    void write(std::string_view text);
    // Makes the file durable under the target's name.
    void commit();

  private:
    [[noreturn]] void fail_errno(std::string_view what) const;

    std::string target_;
    std::filesystem::path directory_;
    std::string temp_path_;
    int fd_ = -1;
    bool committed_ = false;
};

// The whole of `text` as `target`, atomically.
void write_file_atomically(const std::filesystem::path& target, std::string_view text);

}  // namespace hearth
