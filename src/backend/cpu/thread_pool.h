// A pool of persistent threads that splits a range of tasks (rows of a matrix, heads of an
// attention) across cores. The CPU backend dispatches about 300 times per generated token, so a
// dispatch and its join must cost microseconds, not the 50-100 us of starting std::threads:
// idle workers spin on a counter for kSpinBeforeSleep before they sleep on it, the calling
// thread works as thread 0 instead of waiting, and a slice whose worker has not woken (asleep, or
// preempted on a busy machine) is run by whichever thread gets to it first, so one slow wake-up
// does not stall the whole op. Which OS thread runs a slice never changes the slices themselves,
// so results do not depend on timing.
//
// One external thread at a time: run() and run_dynamic() must not be called from two threads at
// once, nor from inside a task (debug builds assert). Tasks must not throw (std::terminate).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace hearth::cpu {

// The tasks [begin, end) one thread gets.
struct TaskRange {
    int64_t begin = 0;
    int64_t end = 0;

    bool operator==(const TaskRange&) const = default;
};

// The static partition run() uses: thread i of n gets a contiguous slice, the first
// task_count % n threads one task more than the others. Depends only on its arguments, so a
// kernel that reduces per thread gets the same result on every run.
TaskRange static_slice(int64_t task_count, int thread_count, int thread_index);

class ThreadPool {
  public:
    // How long an idle worker spins before it sleeps. Between the ops of one token the gap is a
    // few microseconds, so workers stay awake through a token and sleep between requests.
    static constexpr std::chrono::microseconds kSpinBeforeSleep{50};
    static constexpr int kMaxThreads = 4096;

    // `threads` counts the calling thread; 1 runs every task inline. Throws std::invalid_argument
    // for threads < 1 or > kMaxThreads.
    explicit ThreadPool(int threads);
    ~ThreadPool();  // wakes and joins the workers; waits for nothing else (no run is in flight)

    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int thread_count() const { return thread_count_; }

    // Calls fn(begin, end, thread_index) once for each thread_index whose
    // static_slice(task_count, thread_count(), thread_index) is not empty, and returns when all
    // calls have returned. thread_index names the slice, not the OS thread: the caller runs 0,
    // and runs others too when their worker is slow to wake. Concurrent calls never share a
    // thread_index, so it may pick a per-thread scratch buffer or partial sum.
    template <class Fn>
    void run(int64_t task_count, const Fn& fn) {
        if (task_count <= 0) return;
        if (thread_count_ == 1 || task_count == 1) {  // the partition gives everything to thread 0
            fn(int64_t{0}, task_count, 0);
            return;
        }
        struct Context {
            const Fn* fn;
            int64_t task_count;
            int thread_count;
        } context{&fn, task_count, thread_count_};
        dispatch(
            [](const void* erased, int thread_index) noexcept {
                const auto& c = *static_cast<const Context*>(erased);
                const TaskRange range = static_slice(c.task_count, c.thread_count, thread_index);
                if (range.begin < range.end) (*c.fn)(range.begin, range.end, thread_index);
            },
            &context);
    }

    // Cuts [0, task_count) into chunks of chunk_size tasks (the last may be shorter) and lets the
    // threads claim them in turn: for tasks of uneven cost. The chunk boundaries are fixed; which
    // thread runs a chunk is not, so results may depend on thread_index only in ways that don't
    // change the output (scratch buffers, not partial sums).
    template <class Fn>
    void run_dynamic(int64_t task_count, int64_t chunk_size, const Fn& fn) {
        if (task_count <= 0) return;
        if (chunk_size < 1) chunk_size = 1;
        if (thread_count_ == 1 || task_count <= chunk_size) {
            fn(int64_t{0}, task_count, 0);
            return;
        }
        struct Context {
            const Fn* fn;
            int64_t task_count;
            int64_t chunk_size;
            // Only the claim order matters, not what other memory it publishes: relaxed.
            alignas(64) std::atomic<int64_t> next_chunk_begin{0};
        } context{&fn, task_count, chunk_size};
        dispatch(
            [](const void* erased, int thread_index) noexcept {
                auto& c = *static_cast<Context*>(const_cast<void*>(erased));
                for (;;) {
                    const int64_t begin =
                        c.next_chunk_begin.fetch_add(c.chunk_size, std::memory_order_relaxed);
                    if (begin >= c.task_count) break;
                    const int64_t end =
                        begin + c.chunk_size < c.task_count ? begin + c.chunk_size : c.task_count;
                    (*c.fn)(begin, end, thread_index);
                }
            },
            &context);
    }

  private:
    // A job is a plain function and a pointer to its captures (the caller's stack frame, alive
    // until dispatch returns): no allocation per call, unlike std::function.
    using Job = void (*)(const void* context, int slice) noexcept;

    // Runs job(context, s) once for every slice s in [0, thread_count_), slice 0 on the caller,
    // and returns when all have returned. Any thread may run any other slice: one that has not
    // woken up by the time the caller is done with its own slice loses it to the caller.
    void dispatch(Job job, const void* context);
    // Runs slices of the dispatch `claim` belongs to until none is left; returns how many.
    int run_unclaimed_slices(uint64_t claim, Job job, const void* context);
    void worker_loop();

    // The claim word: the dispatch number in the high bits, the next unclaimed slice in the low.
    static constexpr int kSliceBits = 16;
    static constexpr uint64_t kSliceMask = (uint64_t{1} << kSliceBits) - 1;
    static constexpr size_t kCacheLineBytes = 64;

    int thread_count_;
    std::vector<std::thread> workers_;
    uint64_t dispatch_count_ = 0;  // the caller's only

    // Atomics (relaxed) only because a worker that woke late may read them while the caller
    // already writes the next dispatch's; it then fails to claim and never calls them.
    std::atomic<Job> job_{nullptr};
    std::atomic<const void*> job_context_{nullptr};
    std::atomic<bool> stopping_{false};

    // Each on its own cache line: workers poll wake_signal_ and claim_ while they finish slices.
    alignas(kCacheLineBytes) std::atomic<uint32_t> wake_signal_{0};  // futex word, bumped per dispatch
    alignas(kCacheLineBytes) std::atomic<uint64_t> claim_{0};
    alignas(kCacheLineBytes) std::atomic<int> slices_done_by_workers_{0};
    alignas(kCacheLineBytes) std::atomic<bool> run_in_flight_{false};  // debug check of one caller
};

}  // namespace hearth::cpu
