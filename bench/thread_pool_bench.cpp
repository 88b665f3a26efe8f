// Dispatch + join latency of an empty task: what the CPU backend pays per op (about 300 per
// token) before any arithmetic. ThreadPool against starting and joining std::threads per call,
// which is what a backend without a pool would do. The asleep case measures the first op of a
// token after the workers have gone to sleep (a pause longer than kSpinBeforeSleep).
//
// Run with --benchmark_repetitions=N --benchmark_report_aggregates_only=true for medians: on a
// shared VM single runs are noisy.
#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>
#include <vector>

#include "backend/cpu/thread_pool.h"

namespace {

using hearth::cpu::ThreadPool;

void pool_empty_task(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    for (auto _ : state) {
        pool.run(threads, [](int64_t begin, int64_t, int) { benchmark::DoNotOptimize(begin); });
    }
}

void pool_empty_task_dynamic(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    for (auto _ : state) {
        pool.run_dynamic(threads, 1, [](int64_t begin, int64_t, int) { benchmark::DoNotOptimize(begin); });
    }
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
BENCHMARK(pool_empty_task_dynamic)->Arg(2)->UseRealTime();
BENCHMARK(pool_empty_task_after_sleep)->Arg(2)->UseRealTime()->Iterations(300);
BENCHMARK(spawn_join_empty_task)->Arg(2)->UseRealTime();

BENCHMARK_MAIN();
