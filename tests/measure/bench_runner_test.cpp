// run_bench on the tiny test model: each test runs once untimed before its repetitions, as
// llama-bench does (its first run pays for buffers grown to its size), unless told not to.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <unistd.h>

#include "measure/bench_runner.h"
#include "model/test_model.h"

namespace hearth::measure {
namespace {

// The tiny test model in the temporary folder, under a name of this process.
std::filesystem::path write_tiny_model(const std::string& name) {
    const std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("hearth-" + name + "-" + std::to_string(::getpid()) + ".gguf");
    model::TestModelOptions options;
    options.preset = model::find_test_model_preset("tiny");
    model::write_test_model(options, path);
    return path;
}

TEST(BenchRunner, EachTestRunsOnceUntimedBeforeItsRepetitions) {
    const std::filesystem::path path = write_tiny_model("bench-runner");
    for (const bool untimed_first : {true, false}) {
        BenchRun run;
        run.model = path;
        run.request.prompt_sizes = {8};
        run.request.generate_sizes = {4};
        run.repetitions = 2;
        run.warmup_tokens = 4;
        run.warmup_each_test = untimed_first;
        int64_t runs = 0, total = 0;
        BenchCallbacks callbacks;
        callbacks.progress = [&](int64_t done, int64_t of) {
            EXPECT_EQ(done, ++runs);
            total = of;
        };
        const BenchReport report = run_bench(run, callbacks);
        // Two tests (pp8, tg4): every run is counted, only the timed ones are samples.
        EXPECT_EQ(runs, 2 * (2 + (untimed_first ? 1 : 0))) << untimed_first;
        EXPECT_EQ(total, runs);
        EXPECT_EQ(report.warmup_each_test, untimed_first);
        ASSERT_EQ(report.results.size(), 2u);
        for (const BenchResult& result : report.results) EXPECT_EQ(result.tokens_per_second.samples.size(), 2u);
    }
    std::filesystem::remove(path);
}

// Batched decode tests: one result per stream count, named for it, with the samples asked for.
// Depth 70 puts each stream past its first cache block.
TEST(BenchRunner, StreamsDecodeTogether) {
    const std::filesystem::path path = write_tiny_model("bench-streams");
    BenchRun run;
    run.model = path;
    run.request.prompt_sizes = {0};
    run.request.generate_sizes = {4};
    run.request.depths = {70};
    run.request.streams = {1, 3};
    run.repetitions = 2;
    run.warmup_tokens = 4;
    const BenchReport report = run_bench(run);
    ASSERT_EQ(report.results.size(), 2u);
    EXPECT_EQ(test_name(report.results[0].test), "tg4 @ d70");
    EXPECT_EQ(test_name(report.results[1].test), "tg4 x3 @ d70");
    for (const BenchResult& result : report.results) {
        EXPECT_EQ(result.tokens_per_second.samples.size(), 2u);
        EXPECT_GT(result.tokens_per_second.mean, 0);
    }
    std::filesystem::remove(path);
}

}  // namespace
}  // namespace hearth::measure
