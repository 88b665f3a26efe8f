// A pool of persistent threads that splits a range of tasks (rows of a matrix, heads of an
// attention) across cores. The CPU backend dispatches about 300 times per generated token, so a
// dispatch and its join must cost microseconds, not the 50-100 us of starting std::threads:
// idle workers spin on a generation counter for kSpinBeforeSleep before they sleep on it, and the
// calling thread works as thread 0 instead of waiting.
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

    // `threads` counts the calling thread; 1 runs every task inline. Throws std::invalid_argument
    // for threads < 1.
    explicit ThreadPool(int threads);
    ~ThreadPool();  // wakes and joins the workers; waits for nothing else (no run is in flight)

    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int thread_count() const { return thread_count_; }

    // Calls fn(begin, end, thread_index) once per thread whose static_slice(task_count, ...) is
    // not empty, and returns when all calls have returned. The caller runs thread_index 0.
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
                    const int64_t begin = c.next_chunk_begin.fetch_add(c.chunk_size, std::memory_order_relaxed);
                    if (begin >= c.task_count) break;
                    const int64_t end = begin + c.chunk_size < c.task_count ? begin + c.chunk_size : c.task_count;
                    (*c.fn)(begin, end, thread_index);
                }
            },
            &context);
    }

private:
    // A job is a plain function and a pointer to its captures (the caller's stack frame, alive
    // until dispatch returns): no allocation per call, unlike std::function.
    using Job = void (*)(const void* context, int thread_index) noexcept;

    // Runs job(context, i) on every thread i in [0, thread_count_) and returns when all are done.
    void dispatch(Job job, const void* context);
    void worker_loop(int thread_index);

    static constexpr size_t kCacheLineBytes = 64;

    int thread_count_;
    std::vector<std::thread> workers_;

    // Written by the caller before it publishes a generation, read by workers after they see it.
    Job job_ = nullptr;
    const void* job_context_ = nullptr;
    bool stopping_ = false;

    // Each counter on its own cache line: workers poll generation_ while others write pending_.
    alignas(kCacheLineBytes) std::atomic<uint32_t> generation_{0};
    alignas(kCacheLineBytes) std::atomic<int> pending_workers_{0};
    alignas(kCacheLineBytes) std::atomic<bool> run_in_flight_{false};  // debug check of one caller
};

}  // namespace hearth::cpu
