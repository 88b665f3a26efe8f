// Runs the tests of a BenchRequest on one model file, as the standard local-LLM write-ups do:
// a warm-up not counted, then per test an untimed run and R repetitions with fixed-seed random tokens, and
// for decode tests a read-bandwidth probe of the backend's memory right before (the ceiling).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

#include "measure/bench_plan.h"
#include "measure/bench_report.h"
#include "runtime/backend_choice.h"

namespace hearth::measure {

struct BenchRun {
    std::filesystem::path model;
    BenchRequest request;
    int repetitions = 5;
    // Tokens through the model before anything is timed (a prompt, then single tokens): pages the
    // weights in and wakes the threads.
    int warmup_tokens = 50;
    // One untimed run of each test before its repetitions, as llama-bench does: a test's first run
    // pays for what its size needs first (buffers grown to it; on the GPU, cuBLAS choosing kernels).
    bool warmup_each_test = true;
    // Batched decode tests (streams > 1): each pass's greedy tokens found on the backend, instead
    // of every row's logits copied to the host (as llama-batched-bench does).
    bool greedy_on_device = false;
    uint32_t seed = 1;
    runtime::BackendKind backend = runtime::BackendKind::Cpu;
    int device = 0;           // CUDA device index
    int64_t gpu_layers = -1;  // -ngl
};

struct BenchCallbacks {
    std::function<void(const BenchReport&)> started;  // model loaded, first probe taken
    std::function<void(const BenchReport&, const BenchResult&)> finished_test;
    std::function<void(int64_t done, int64_t total)> progress;  // runs (untimed ones too) over all tests
};

// Throws hearth::Error: an unreadable or unsupported model, a test needing more context than
// the model has, too little memory.
BenchReport run_bench(const BenchRun& run, const BenchCallbacks& callbacks = {});

}  // namespace hearth::measure
