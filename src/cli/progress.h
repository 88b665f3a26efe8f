// A progress bar on stderr for long work (writing models, quantizing). On a terminal it
// redraws one line; otherwise it prints a line at every 10 % so logs stay short.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hearth::cli {

class ProgressBar {
public:
    explicit ProgressBar(std::string label);
    ~ProgressBar();

    void update(uint64_t done, uint64_t total);
    void finish();

private:
    std::string label_;
    bool terminal_;
    bool finished_ = false;
    int last_decile_ = -1;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
    uint64_t done_ = 0;
    uint64_t total_ = 0;
};

}  // namespace hearth::cli
