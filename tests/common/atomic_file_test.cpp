#include "common/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace fs = std::filesystem;

namespace hearth {
namespace {

class AtomicFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        directory_ = fs::temp_directory_path() / ("hearth-atomic-" + std::to_string(::getpid()));
        fs::create_directories(directory_);
    }
    void TearDown() override { fs::remove_all(directory_); }

    std::string read(const fs::path& path) {
        std::ifstream in(path);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }
    size_t entries() { return static_cast<size_t>(std::distance(fs::directory_iterator(directory_), {})); }

    fs::path directory_;
};

TEST_F(AtomicFileTest, CommitReplacesTheTargetWhole) {
    const fs::path target = directory_ / "out.txt";
    write_file_atomically(target, "old");
    write_file_atomically(target, "new contents");
    EXPECT_EQ(read(target), "new contents");
    EXPECT_EQ(entries(), 1u);  // no temporary file left
}

TEST_F(AtomicFileTest, WithoutCommitTheTargetStaysAsItWas) {
    const fs::path target = directory_ / "out.txt";
    write_file_atomically(target, "kept");
    {
        AtomicFile file(target);
        file.write(std::string_view("half of a new"));
        EXPECT_EQ(entries(), 2u);  // the temporary file beside it
    }  // dropped, as when an exception unwinds before commit()
    EXPECT_EQ(read(target), "kept");
    EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFileTest, AMissingDirectoryIsAnErrorNamingThePath) {
    const fs::path target = directory_ / "no-such-dir" / "out.svg";
    try {
        write_file_atomically(target, "x");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace hearth
