// Where a pass's GPU time goes, op by op: with HEARTH_CUDA_PROFILE=1 the backend records an event
// after each launch, and at the end of each pass adds the time between consecutive events to the
// op that ended there, per pass size (rows). The table goes to stderr when the backend closes.
// Passes run eagerly while it is on (no CUDA graphs: events cannot time a replay's nodes), so a
// pass whose launches the CPU cannot keep up with shows the gaps in its ops' times. Work enqueued
// without a launch check (cuBLAS's products, copies) counts to the op checked after it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"

namespace hearth::cuda {

class OpProfile {
  public:
    explicit OpProfile(Stream stream) : stream_(stream) {}
    ~OpProfile();
    OpProfile(const OpProfile&) = delete;
    OpProfile& operator=(const OpProfile&) = delete;

    // Whether HEARTH_CUDA_PROFILE asks for it.
    static bool wanted();

    void begin_pass(int64_t rows);
    void after(const char* op);
    // Waits for the pass and adds its times.
    void end_pass();

  private:
    void record(const char* op);

    struct OpTotal {
        int64_t launches = 0;
        double ms = 0;
    };
    struct PassTotal {
        int64_t passes = 0;
        double ms = 0;
        std::map<std::string, OpTotal> ops;
    };
    Stream stream_;
    std::vector<void*> events_;  // cudaEvent_t, reused from pass to pass
    std::vector<const char*> ops_;
    size_t used_ = 0;
    bool open_ = false;
    int64_t rows_ = 0;
    std::map<int64_t, PassTotal> by_rows_;
};

}  // namespace hearth::cuda
