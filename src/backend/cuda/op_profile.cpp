#include "backend/cuda/op_profile.h"

#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace hearth::cuda {

bool OpProfile::wanted() {
    const char* value = std::getenv("HEARTH_CUDA_PROFILE");
    return value != nullptr && std::string_view(value) != "0" && std::string_view(value) != "";
}

void OpProfile::record(const char* op) {
    if (used_ == events_.size()) {
        cudaEvent_t event = nullptr;
        if (cudaEventCreate(&event) != cudaSuccess) return;  // a profile with a gap, not a failed pass
        events_.push_back(event);
        ops_.push_back(nullptr);
    }
    ops_[used_] = op;
    cudaEventRecord(static_cast<cudaEvent_t>(events_[used_]), stream_);
    ++used_;
}

void OpProfile::begin_pass(int64_t rows) {
    if (open_) end_pass();
    used_ = 0;
    rows_ = rows;
    open_ = true;
    record(nullptr);
}

void OpProfile::after(const char* op) {
    if (open_) record(op);
}

void OpProfile::end_pass() {
    if (!open_) return;
    open_ = false;
    if (used_ < 2 || cudaEventSynchronize(static_cast<cudaEvent_t>(events_[used_ - 1])) != cudaSuccess) return;
    PassTotal& pass = by_rows_[rows_];
    ++pass.passes;
    for (size_t i = 1; i < used_; ++i) {
        float ms = 0;
        cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(events_[i - 1]), static_cast<cudaEvent_t>(events_[i]));
        OpTotal& op = pass.ops[ops_[i]];
        ++op.launches;
        op.ms += ms;
        pass.ms += ms;
    }
}

OpProfile::~OpProfile() {
    end_pass();
    for (const auto& [rows, pass] : by_rows_) {
        const double passes = static_cast<double>(pass.passes);
        fmt::print(stderr, "\nCUDA passes of {} rows: {} passes, {:.1f} us a pass\n\n", rows, pass.passes,
                   1000.0 * pass.ms / passes);
        fmt::print(stderr, "| op | launches a pass | us a pass | % |\n| --- | ---: | ---: | ---: |\n");
        std::vector<std::pair<std::string, OpTotal>> ops(pass.ops.begin(), pass.ops.end());
        std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
        for (const auto& [name, op] : ops)
            fmt::print(stderr, "| {} | {:.1f} | {:.1f} | {:.1f} |\n", name, static_cast<double>(op.launches) / passes,
                       1000.0 * op.ms / passes, 100.0 * op.ms / pass.ms);
    }
    for (void* event : events_) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

}  // namespace hearth::cuda
