#include "backend/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

namespace hearth::cpu {
namespace {

// Records, for each task, how many times it ran, and checks each call's slice and thread index.
class TaskCounter {
  public:
    explicit TaskCounter(int64_t max_tasks) : counts_(max_tasks) {}

    void reset(int64_t task_count) {
        for (int64_t i = 0; i < task_count; ++i) counts_[i].store(0, std::memory_order_relaxed);
    }
    void add(int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) counts_[i].fetch_add(1, std::memory_order_relaxed);
    }
    // Index of the first task not run exactly once, or -1.
    int64_t first_wrong(int64_t task_count) const {
        for (int64_t i = 0; i < task_count; ++i) {
            if (counts_[i].load(std::memory_order_relaxed) != 1) return i;
        }
        return -1;
    }

  private:
    std::vector<std::atomic<int>> counts_;
};

TEST(StaticSlice, CoversTheRangeInOrderWithSizesDifferingByAtMostOne) {
    for (int threads = 1; threads <= 9; ++threads) {
        for (int64_t count : {0, 1, 2, 3, 7, 8, 9, 100, 4097}) {
            int64_t expected_begin = 0;
            for (int t = 0; t < threads; ++t) {
                const TaskRange range = static_slice(count, threads, t);
                EXPECT_EQ(range.begin, expected_begin)
                    << count << " tasks, thread " << t << " of " << threads;
                const int64_t size = range.end - range.begin;
                EXPECT_TRUE(size == count / threads || size == count / threads + 1);
                expected_begin = range.end;
            }
            EXPECT_EQ(expected_begin, count) << count << " tasks, " << threads << " threads";
        }
    }
}

TEST(StaticSlice, HasKnownValues) {
    // 10 tasks over 4 threads: 3, 3, 2, 2.
    EXPECT_EQ(static_slice(10, 4, 0), (TaskRange{0, 3}));
    EXPECT_EQ(static_slice(10, 4, 1), (TaskRange{3, 6}));
    EXPECT_EQ(static_slice(10, 4, 2), (TaskRange{6, 8}));
    EXPECT_EQ(static_slice(10, 4, 3), (TaskRange{8, 10}));
    // Fewer tasks than threads: the last threads get nothing.
    EXPECT_EQ(static_slice(2, 4, 1), (TaskRange{1, 2}));
    EXPECT_EQ(static_slice(2, 4, 3), (TaskRange{2, 2}));
}

TEST(ThreadPool, RejectsFewerThanOneThread) {
    EXPECT_THROW(ThreadPool(0), std::invalid_argument);
    EXPECT_THROW(ThreadPool(-3), std::invalid_argument);
    EXPECT_THROW(ThreadPool(ThreadPool::kMaxThreads + 1), std::invalid_argument);
}

// `dispatches` runs of random sizes (0, 1, fewer than the threads, and huge), each checked:
// every task exactly once, every call on the slice the partition promises.
void expect_every_task_once(int threads, int dispatches) {
    constexpr int64_t kHugeCount = 1 << 20;
    ThreadPool pool(threads);
    TaskCounter counter(kHugeCount);
    std::mt19937_64 random(20261125);
    std::atomic<int> wrong_slices{0};
    for (int d = 0; d < dispatches; ++d) {
        int64_t count;
        switch (d % 5) {
            case 0:
                count = d % 3;
                break;  // 0, 1, 2
            case 1:
                count = random() % threads;
                break;  // fewer tasks than threads
            case 2:
                count = random() % 64;
                break;
            case 3:
                count = random() % 4096;
                break;
            default:
                count = d % 10000 == 4 ? kHugeCount : random() % 300;
                break;
        }
        counter.reset(count);
        pool.run(count, [&](int64_t begin, int64_t end, int thread_index) {
            if (static_slice(count, threads, thread_index) != TaskRange{begin, end} || begin >= end) {
                wrong_slices.fetch_add(1, std::memory_order_relaxed);
            }
            counter.add(begin, end);
        });
        ASSERT_EQ(counter.first_wrong(count), -1) << "dispatch " << d << " of " << count << " tasks";
        ASSERT_EQ(wrong_slices.load(), 0) << "dispatch " << d << " of " << count << " tasks";
    }
}

void expect_every_chunk_once(int threads, int dispatches) {
    constexpr int64_t kMaxCount = 1 << 12;
    ThreadPool pool(threads);
    TaskCounter counter(kMaxCount);
    std::mt19937_64 random(7);
    for (int d = 0; d < dispatches; ++d) {
        const int64_t count = d % 7 == 0 ? d % 3 : static_cast<int64_t>(random() % kMaxCount);
        const int64_t chunk = 1 + static_cast<int64_t>(random() % 100);
        counter.reset(count);
        std::atomic<int> bad_chunks{0};
        pool.run_dynamic(count, chunk, [&](int64_t begin, int64_t end, int thread_index) {
            const bool whole_chunk = begin % chunk == 0 && (end - begin == chunk || end == count);
            if (!whole_chunk || thread_index < 0 || thread_index >= threads) bad_chunks.fetch_add(1);
            counter.add(begin, end);
        });
        ASSERT_EQ(counter.first_wrong(count), -1)
            << "dispatch " << d << ": " << count << " tasks, chunk " << chunk;
        ASSERT_EQ(bad_chunks.load(), 0) << "dispatch " << d << ": " << count << " tasks, chunk " << chunk;
    }
}

TEST(ThreadPool, RunsEveryTaskExactlyOnceOverManyDispatches) {
    expect_every_task_once(2, 100'000);
}

// More threads than this 2-core machine has: workers are preempted mid-spin and mid-task.
TEST(ThreadPool, RunsEveryTaskExactlyOnceWithMoreThreadsThanCores) {
    expect_every_task_once(5, 3'000);
}

TEST(ThreadPool, RunDynamicRunsEveryTaskExactlyOnceInWholeChunks) {
    expect_every_chunk_once(2, 20'000);
    expect_every_chunk_once(3, 2'000);
}

// A kernel that writes per-thread partial sums and then reduces them in thread order gets the
// same bits on every run and equals a serial loop over the same slices.
TEST(ThreadPool, StaticPartitionMakesReductionsDeterministic) {
    constexpr int kThreads = 3;
    constexpr int64_t kCount = 100'003;
    std::vector<float> values(kCount);
    std::mt19937 random(1);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (float& v : values) v = uniform(random);

    float serial = 0.0f;  // the same slices summed one after another
    for (int t = 0; t < kThreads; ++t) {
        const TaskRange range = static_slice(kCount, kThreads, t);
        float partial = 0.0f;
        for (int64_t i = range.begin; i < range.end; ++i) partial += values[i];
        serial += partial;
    }

    ThreadPool pool(kThreads);
    for (int round = 0; round < 200; ++round) {
        std::vector<float> partials(kThreads, 0.0f);
        pool.run(kCount, [&](int64_t begin, int64_t end, int thread_index) {
            float partial = 0.0f;
            for (int64_t i = begin; i < end; ++i) partial += values[i];
            partials[thread_index] = partial;
        });
        float parallel = 0.0f;
        for (float p : partials) parallel += p;
        ASSERT_EQ(parallel, serial) << "round " << round;  // bit-exact, not approximately
    }
}

TEST(ThreadPool, ResultsEqualASerialLoop) {
    constexpr int64_t kRows = 257;
    constexpr int64_t kColumns = 64;
    std::vector<float> matrix(kRows * kColumns);
    std::vector<float> vector(kColumns);
    std::mt19937 random(2);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (float& v : matrix) v = uniform(random);
    for (float& v : vector) v = uniform(random);
    auto row_dot = [&](int64_t row) {
        float sum = 0.0f;
        for (int64_t c = 0; c < kColumns; ++c) sum += matrix[row * kColumns + c] * vector[c];
        return sum;
    };
    std::vector<float> serial(kRows);
    for (int64_t r = 0; r < kRows; ++r) serial[r] = row_dot(r);

    for (int threads : {1, 2, 3, 5}) {
        ThreadPool pool(threads);
        std::vector<float> parallel(kRows, 0.0f);
        pool.run(kRows, [&](int64_t begin, int64_t end, int) {
            for (int64_t r = begin; r < end; ++r) parallel[r] = row_dot(r);
        });
        EXPECT_EQ(parallel, serial) << threads << " threads, run";
        std::vector<float> dynamic(kRows, 0.0f);
        pool.run_dynamic(kRows, 16, [&](int64_t begin, int64_t end, int) {
            for (int64_t r = begin; r < end; ++r) dynamic[r] = row_dot(r);
        });
        EXPECT_EQ(dynamic, serial) << threads << " threads, run_dynamic";
    }
}

TEST(ThreadPool, RunsSliceZeroOnTheCallerAndUsesTheWorkers) {
    constexpr int kThreads = 4;
    ThreadPool pool(kThreads);
    bool worker_seen = false;
    for (int round = 0; round < 1000 && !worker_seen; ++round) {
        std::vector<std::thread::id> ids(kThreads);
        pool.run(kThreads, [&](int64_t begin, int64_t end, int thread_index) {
            EXPECT_EQ(end - begin, 1);
            EXPECT_EQ(begin, thread_index);
            ids[thread_index] = std::this_thread::get_id();
            std::this_thread::sleep_for(std::chrono::microseconds(200));  // leave the workers time to claim
        });
        ASSERT_EQ(ids[0], std::this_thread::get_id());
        for (int i = 1; i < kThreads; ++i) worker_seen |= ids[i] != std::this_thread::get_id();
    }
    EXPECT_TRUE(worker_seen) << "every slice ran on the caller";
}

// A slow thread_index-0 slice: the workers take every other slice meanwhile.
TEST(ThreadPool, ThreadIndexIsNeverSharedByConcurrentCalls) {
    constexpr int kThreads = 3;
    ThreadPool pool(kThreads);
    std::vector<std::atomic<int>> in_use(kThreads);
    std::atomic<int> shared{0};
    for (int round = 0; round < 500; ++round) {
        pool.run(kThreads * 7, [&](int64_t, int64_t, int thread_index) {
            if (in_use[thread_index].fetch_add(1) != 0) shared.fetch_add(1);
            if (thread_index == 0) std::this_thread::yield();
            in_use[thread_index].fetch_sub(1);
        });
    }
    EXPECT_EQ(shared.load(), 0);
}

TEST(ThreadPool, WakesWorkersThatHaveFallenAsleep) {
    ThreadPool pool(3);
    for (int round = 0; round < 5; ++round) {
        // Far past kSpinBeforeSleep: every worker is asleep on the generation counter.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::atomic<int64_t> sum{0};
        pool.run(3000, [&](int64_t begin, int64_t end, int) {
            int64_t partial = 0;
            for (int64_t i = begin; i < end; ++i) partial += i;
            sum.fetch_add(partial);
        });
        EXPECT_EQ(sum.load(), int64_t{3000} * 2999 / 2) << "round " << round;
    }
}

TEST(ThreadPool, PoolOfOneRunsInlineOnTheCaller) {
    ThreadPool pool(1);
    EXPECT_EQ(pool.thread_count(), 1);
    const std::thread::id caller = std::this_thread::get_id();
    int calls = 0;
    pool.run(10, [&](int64_t begin, int64_t end, int thread_index) {
        EXPECT_EQ(begin, 0);
        EXPECT_EQ(end, 10);
        EXPECT_EQ(thread_index, 0);
        EXPECT_EQ(std::this_thread::get_id(), caller);
        ++calls;
    });
    pool.run(0, [&](int64_t, int64_t, int) { ++calls; });
    pool.run_dynamic(10, 3, [&](int64_t, int64_t, int) { ++calls; });
    EXPECT_EQ(calls, 2);
}

TEST(ThreadPool, DestroysCleanlyWhileIdle) {
    for (int threads : {1, 2, 4, 8}) {
        { ThreadPool never_used(threads); }
        {
            ThreadPool used(threads);
            std::atomic<int> calls{0};
            used.run(100, [&](int64_t, int64_t, int) { calls.fetch_add(1); });
            EXPECT_EQ(calls.load(), std::min(threads, 100));
        }
        {
            ThreadPool asleep(threads);
            asleep.run(threads, [](int64_t, int64_t, int) {});
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers past their spin
        }
    }
}

}  // namespace
}  // namespace hearth::cpu
