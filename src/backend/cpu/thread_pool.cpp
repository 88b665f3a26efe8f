#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <cassert>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// How a dispatch works, and why acquire/release is enough.
//
// The caller stores job_ and job_context_ (relaxed), resets slices_done_by_workers_ (relaxed),
// and then publishes claim_ = (dispatch number, slice 1) with a release store; slice 0 is its
// own. Every thread claims slices with a CAS on claim_ that expects the dispatch number it read.
// Any thread whose acquire load or CAS reads that value, or a later CAS of the same dispatch
// (all RMWs, so they continue the release sequence of the caller's store), sees the job and
// everything the caller wrote before the dispatch: the kernel's inputs.
//
// A worker finishing a slice adds 1 to slices_done_by_workers_ with a release RMW. The caller's
// acquire load that reads the final count reads the last of those RMWs, which continues the
// release sequences of all earlier ones: the caller synchronizes with every slice's worker and
// sees every result.
//
// A worker that woke late may still read job_ while the caller writes the next dispatch's. That
// is why job_ and job_context_ are atomics, and why it is harmless: the worker loaded claim_
// (dispatch n) before job_, so job_ holds dispatch n's job or a later one; a later one is stored
// only after all n's slices were claimed, so the worker's CAS that expects dispatch n then fails
// and it calls nothing. If the CAS succeeds, the slice's completion happens before the caller's
// next store to job_, so the job it loaded is dispatch n's (read-write coherence).
//
// wake_signal_ only wakes workers; the data travels through claim_. Its bump is a release only so
// that a worker that saw it reads the new claim_; a worker that misses a bump loses nothing but
// slices the caller then runs. No pair of different atomics needs one agreed order, so no
// seq_cst. Sleeping is std::atomic::wait/notify (a futex), which rechecks the value in the
// kernel and cannot miss a bump made just before the worker falls asleep.
//
// The dispatch number has 48 bits in claim_: it would take a worker preempted between its load
// of claim_ and its CAS for 2^48 dispatches to confuse two of them.

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
    static_assert(kMaxThreads <= static_cast<int>(kSliceMask));
    if (threads < 1 || threads > kMaxThreads) {
        throw std::invalid_argument("ThreadPool: thread count must be between 1 and " +
                                    std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
    }
    workers_.reserve(threads - 1);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    assert(!run_in_flight_.load(std::memory_order_relaxed));
    stopping_.store(true, std::memory_order_relaxed);
    wake_signal_.fetch_add(1, std::memory_order_release);  // publishes stopping_
    wake_signal_.notify_all();
    for (std::thread& worker : workers_) worker.join();
}

int ThreadPool::run_unclaimed_slices(uint64_t claim, Job job, const void* context) {
    const uint64_t dispatch_number = claim >> kSliceBits;
    int slices_run = 0;
    while (claim >> kSliceBits == dispatch_number && static_cast<int>(claim & kSliceMask) < thread_count_) {
        // On failure the CAS reloads claim: another thread took the slice, or (for a late worker)
        // a newer dispatch began, which ends the loop.
        if (claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acquire,
                                         std::memory_order_acquire)) {
            job(context, static_cast<int>(claim & kSliceMask));
            ++slices_run;
            claim = claim_.load(std::memory_order_acquire);
        }
    }
    return slices_run;
}

void ThreadPool::dispatch(Job job, const void* context) {
#ifndef NDEBUG
    const bool another_run_in_flight = run_in_flight_.exchange(true, std::memory_order_relaxed);
    assert(!another_run_in_flight && "ThreadPool::run called from two threads at once or from a task");
#endif
    ++dispatch_count_;
    job_.store(job, std::memory_order_relaxed);
    job_context_.store(context, std::memory_order_relaxed);
    slices_done_by_workers_.store(0, std::memory_order_relaxed);
    const uint64_t first_claim = (dispatch_count_ << kSliceBits) | 1;
    claim_.store(first_claim, std::memory_order_release);
    // Release, so that a worker woken by this bump reads this dispatch's claim_, not the last one.
    wake_signal_.fetch_add(1, std::memory_order_release);
    wake_signal_.notify_all();  // a load and no system call while no worker sleeps (libstdc++)

    job(context, 0);
    const int slices_run_here =
        1 + run_unclaimed_slices(claim_.load(std::memory_order_acquire), job, context);

    // All slices are claimed; wait for those still running on workers. Past the spin budget, yield
    // so that a worker sharing this core (more threads than cores, a busy machine) can finish.
    const int slices_on_workers = thread_count_ - slices_run_here;
    const auto spin_deadline = std::chrono::steady_clock::now() + kSpinBeforeSleep;
    for (int i = 1; slices_done_by_workers_.load(std::memory_order_acquire) != slices_on_workers; ++i) {
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

void ThreadPool::worker_loop() {
    uint32_t seen_signal = 0;  // the constructor bumps nothing: wake_signal_ starts at 0
    for (;;) {
        uint32_t signal = wake_signal_.load(std::memory_order_acquire);
        const auto spin_deadline = std::chrono::steady_clock::now() + kSpinBeforeSleep;
        for (int i = 1; signal == seen_signal; ++i) {
            cpu_relax();
            if (i % kPausesPerClockRead == 0 && std::chrono::steady_clock::now() >= spin_deadline) {
                wake_signal_.wait(seen_signal, std::memory_order_acquire);  // returns once it differs
            }
            signal = wake_signal_.load(std::memory_order_acquire);
        }
        seen_signal = signal;
        if (stopping_.load(std::memory_order_relaxed)) return;

        const uint64_t claim = claim_.load(std::memory_order_acquire);
        const Job job = job_.load(std::memory_order_relaxed);
        const void* context = job_context_.load(std::memory_order_relaxed);
        const int slices_run = run_unclaimed_slices(claim, job, context);
        if (slices_run > 0) slices_done_by_workers_.fetch_add(slices_run, std::memory_order_release);
    }
}

}  // namespace hearth::cpu
