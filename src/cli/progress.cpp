#include "cli/progress.h"

#include "common/strings.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace hearth::cli {
namespace {

constexpr int kBarWidth = 30;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

}  // namespace

ProgressBar::ProgressBar(std::string label, std::string count_noun)
    : label_(std::move(label)),
      count_noun_(std::move(count_noun)),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

std::string ProgressBar::amount(double value) const {
    if (count_noun_.empty()) return format_bytes(value);
    return fmt::format("{:.0f}", value);
}

void ProgressBar::clear_line() {
    if (terminal_ && total_ > 0 && !finished_) std::fputs("\r\x1b[K", stderr);
}

ProgressBar::~ProgressBar() {
    if (terminal_ && !finished_ && total_ > 0) std::fputc('\n', stderr);
}

void ProgressBar::update(uint64_t done, uint64_t total) {
    done_ = done;
    total_ = total;
    const auto now = std::chrono::steady_clock::now();
    const double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
    if (terminal_) {
        if (done < total && now - last_draw_ < kRedrawInterval) return;
        last_draw_ = now;
        const int filled = static_cast<int>(fraction * kBarWidth);
        const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
        std::fprintf(stderr, "\r%s [%s%s] %3.0f%% %s / %s  %s/s  ETA %.0fs \x1b[K", label_.c_str(),
                     std::string(filled, '#').c_str(), std::string(kBarWidth - filled, ' ').c_str(), fraction * 100.0,
                     amount(done).c_str(), amount(total).c_str(), amount(rate).c_str(), eta);
    } else {
        const int decile = static_cast<int>(fraction * 10.0);
        if (decile == last_decile_) return;
        last_decile_ = decile;
        std::fprintf(stderr, "%s: %3d%% of %s%s%s\n", label_.c_str(), decile * 10, amount(total).c_str(),
                     count_noun_.empty() ? "" : " ", count_noun_.c_str());
    }
    std::fflush(stderr);
}

void ProgressBar::finish() {
    if (finished_) return;
    finished_ = true;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (terminal_) std::fputc('\n', stderr);
    if (count_noun_.empty()) {
        std::fprintf(stderr, "%s: %s in %.1f s (%s/s)\n", label_.c_str(), amount(total_).c_str(), seconds,
                     amount(seconds > 0 ? total_ / seconds : 0).c_str());
    } else {
        std::fprintf(stderr, "%s: %s %s in %.1f s\n", label_.c_str(), amount(total_).c_str(), count_noun_.c_str(),
                     seconds);
    }
}

}  // namespace hearth::cli
