#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <cassert>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// Memory ordering, in one place. A dispatch is a handshake in two directions:
//
// Caller -> workers. The caller writes job_, job_context_, stopping_ (plain fields) and
// pending_workers_ (relaxed), then bumps generation_ with a release RMW. A worker that reads the
// new generation with an acquire load therefore sees all of those writes. No worker reads the
// plain fields except between seeing a new generation and decrementing pending_workers_.
//
// Workers -> caller. Each worker decrements pending_workers_ with a release RMW after its part
// of the job. The caller's acquire load that reads 0 reads the last decrement, and since every
// decrement is an RMW on the same atomic, all earlier ones head release sequences that the last
// one continues: the caller synchronizes with every worker, so it sees all their results and may
// overwrite job_ for the next dispatch without racing a worker's read of it.
//
// Neither direction needs seq_cst: there is no pair of different atomics whose relative order
// two threads must agree on. The sleep path is std::atomic::wait/notify, which re-checks the
// value inside the kernel (futex) and so cannot miss a bump that lands just before a worker
// falls asleep.
//
// generation_ wraps after 2^32 dispatches; workers only compare it for inequality, and a worker
// cannot miss a generation because the caller waits for every worker before the next one.

namespace hearth::cpu {

namespace {

// Tells the core that this is a spin-wait loop: it yields pipeline resources to the sibling
// hyperthread and avoids the memory-order mis-speculation flush when the awaited line changes.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// Reading the clock costs about 20 ns; look at it once per this many pauses.
constexpr int kPausesPerClockRead = 64;

}  // namespace

TaskRange static_slice(int64_t task_count, int thread_count, int thread_index) {
    const int64_t base = task_count / thread_count;
    const int64_t remainder = task_count % thread_count;
    const int64_t begin = thread_index * base + std::min<int64_t>(thread_index, remainder);
    return {begin, begin + base + (thread_index < remainder ? 1 : 0)};
}

ThreadPool::ThreadPool(int threads) : thread_count_(threads) {
    if (threads < 1) {
        throw std::invalid_argument("ThreadPool: thread count must be at least 1, got " +
                                    std::to_string(threads));
    }
    workers_.reserve(threads - 1);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    assert(!run_in_flight_.load(std::memory_order_relaxed));
    stopping_ = true;
    generation_.fetch_add(1, std::memory_order_release);  // publishes stopping_
    generation_.notify_all();
    for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::dispatch(Job job, const void* context) {
#ifndef NDEBUG
    const bool another_run_in_flight = run_in_flight_.exchange(true, std::memory_order_relaxed);
    assert(!another_run_in_flight && "ThreadPool::run called from two threads at once or from a task");
#endif
    job_ = job;
    job_context_ = context;
    pending_workers_.store(thread_count_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();  // a load and no system call while no worker sleeps (libstdc++)

    job(context, 0);

    // The caller has nothing else to do, so it spins; past the spin budget it yields so that
    // workers that share its core (more threads than cores) can finish.
    const auto spin_deadline = std::chrono::steady_clock::now() + kSpinBeforeSleep;
    for (int i = 1; pending_workers_.load(std::memory_order_acquire) != 0; ++i) {
        if (i % kPausesPerClockRead != 0 || std::chrono::steady_clock::now() < spin_deadline) {
            cpu_relax();
        } else {
            std::this_thread::yield();
            i = 0;
        }
    }
#ifndef NDEBUG
    run_in_flight_.store(false, std::memory_order_relaxed);
#endif
}

void ThreadPool::worker_loop(int thread_index) {
    uint32_t seen = 0;  // the constructor publishes nothing: generation_ starts at 0
    for (;;) {
        uint32_t current = generation_.load(std::memory_order_acquire);
        const auto spin_deadline = std::chrono::steady_clock::now() + kSpinBeforeSleep;
        for (int i = 1; current == seen; ++i) {
            cpu_relax();
            if (i % kPausesPerClockRead == 0 && std::chrono::steady_clock::now() >= spin_deadline) {
                generation_.wait(seen, std::memory_order_acquire);  // returns once it differs
            }
            current = generation_.load(std::memory_order_acquire);
        }
        seen = current;
        if (stopping_) return;
        job_(job_context_, thread_index);
        pending_workers_.fetch_sub(1, std::memory_order_release);
    }
}

}  // namespace hearth::cpu
