// A progress bar on stderr for long work (writing models, quantizing, benchmarks). On a terminal
// it redraws one line; otherwise it prints a line at every 10 % so logs stay short. Amounts are
// bytes unless a noun is given ("repetitions"), then plain counts.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hearth::cli {

class ProgressBar {
public:
    explicit ProgressBar(std::string label, std::string count_noun = "");
    ~ProgressBar();

    void update(uint64_t done, uint64_t total);
    // Erases the bar's line on a terminal, so other output can be printed; the next update
    // draws it again below.
    void clear_line();
    void finish();

private:
    std::string amount(double value) const;

    std::string label_;
    std::string count_noun_;
    bool terminal_;
    bool finished_ = false;
    int last_decile_ = -1;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
    uint64_t done_ = 0;
    uint64_t total_ = 0;
};

}  // namespace hearth::cli
