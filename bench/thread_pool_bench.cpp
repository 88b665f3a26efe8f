// Dispatch + join latency of an empty task: what the CPU backend pays per op (about 300 per
// token) before any arithmetic. ThreadPool against starting and joining std::threads per call,
// which is what a backend without a pool would do. The asleep case measures the first op of a
// token after the workers have gone to sleep (a pause longer than kSpinBeforeSleep).
//
// Run with --benchmark_repetitions=N --benchmark_report_aggregates_only=true for medians: on a
// shared VM single runs are noisy.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "backend/cpu/thread_pool.h"

namespace {

using hearth::cpu::ThreadPool;

// worker_share: the fraction of slices a worker ran (the rest the caller took over because the
// worker had not claimed them yet), so that the latency is read as a real hand-off or not.
void pool_empty_task(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    const std::thread::id caller = std::this_thread::get_id();
    std::atomic<int64_t> slices_on_workers{0};
    for (auto _ : state) {
        pool.run(threads, [&](int64_t, int64_t, int) {
            if (std::this_thread::get_id() != caller)
                slices_on_workers.fetch_add(1, std::memory_order_relaxed);
        });
    }
    state.counters["worker_share"] =
        static_cast<double>(slices_on_workers.load()) / static_cast<double>(state.iterations() * threads);
}

void pool_empty_task_dynamic(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    for (auto _ : state) {
        pool.run_dynamic(threads, 1, [](int64_t begin, int64_t, int) { benchmark::DoNotOptimize(begin); });
    }
}

// Each slice busy-waits kSliceWork: with a real hand-off the time is kSliceWork plus the
// dispatch + join overhead; the caller running every slice itself would take threads times it.
constexpr auto kSliceWork = std::chrono::microseconds(2);

void busy_wait(std::chrono::nanoseconds duration) {
    const auto end = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < end) {
    }
}

void pool_2us_task(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    const std::thread::id caller = std::this_thread::get_id();
    std::atomic<int64_t> slices_on_workers{0};
    for (auto _ : state) {
        pool.run(threads, [&](int64_t, int64_t, int) {
            if (std::this_thread::get_id() != caller)
                slices_on_workers.fetch_add(1, std::memory_order_relaxed);
            busy_wait(kSliceWork);
        });
    }
    state.counters["worker_share"] =
        static_cast<double>(slices_on_workers.load()) / static_cast<double>(state.iterations() * threads);
}

// Workers asleep on the futex before every dispatch; the timed part is the dispatch alone.
void pool_empty_task_after_sleep(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    for (auto _ : state) {
        state.PauseTiming();
        std::this_thread::sleep_for(ThreadPool::kSpinBeforeSleep * 10);
        state.ResumeTiming();
        pool.run(threads, [](int64_t begin, int64_t, int) { benchmark::DoNotOptimize(begin); });
    }
}

// The caller works as thread 0 and spawns threads - 1, like the pool.
void spawn_join_empty_task(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    std::vector<std::thread> workers;
    workers.reserve(threads - 1);
    for (auto _ : state) {
        for (int i = 1; i < threads; ++i) {
            workers.emplace_back([i] { benchmark::DoNotOptimize(i); });
        }
        int zero = 0;
        benchmark::DoNotOptimize(zero);
        for (std::thread& worker : workers) worker.join();
        workers.clear();
    }
}

}  // namespace

BENCHMARK(pool_empty_task)->Arg(2)->UseRealTime();
BENCHMARK(pool_2us_task)->Arg(2)->UseRealTime();
BENCHMARK(pool_empty_task_dynamic)->Arg(2)->UseRealTime();
BENCHMARK(pool_empty_task_after_sleep)->Arg(2)->UseRealTime()->Iterations(300);
BENCHMARK(spawn_join_empty_task)->Arg(2)->UseRealTime();

BENCHMARK_MAIN();
