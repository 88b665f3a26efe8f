// What `hearth bench` found, and its four ways of saying it:
//  table     for people: the test, tok/s, time to first token, decode GB/s against the probe
//  md        llama-bench's markdown table (model, size, params, backend, threads, test, t/s)
//  csv       one line per test, every field, for spreadsheets
//  json      the whole report; its schema is stable and documented in docs/bench-json.md
// Table, md and csv stream a line per test as it finishes; json is written at the end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "measure/bench_plan.h"

namespace hearth::measure {

struct Stats {
    double mean = 0;
    double stdev = 0;  // sample standard deviation (n - 1); 0 for one sample
    std::vector<double> samples;
};

Stats summarize(std::vector<double> samples);

struct BenchResult {
    BenchTest test;
    Stats tokens_per_second;
    // Prompt tests: from handing over the prompt to the first generated token, in ms.
    std::optional<Stats> time_to_first_token_ms;
    // Decode tests: the read bandwidth probed right before the test, bytes per second.
    std::optional<double> probed_bandwidth;
};

struct BenchModel {
    std::string path;
    std::string description;  // "llama 1B Q4_K_M", as llama-bench names models
    uint64_t file_bytes = 0;
    uint64_t parameters = 0;
    uint64_t bytes_read_per_token = 0;  // weights one decoded token reads
};

struct BenchReport {
    std::string hearth_version;
    std::string started_utc;  // ISO 8601
    std::string cpu;          // "x86-64 avx512 (VNNI)"
    std::string backend = "cpu";
    int cores = 0;
    int repetitions = 0;
    int warmup_tokens = 0;
    bool warmup_each_test = false;  // an untimed run of each test before its repetitions
    bool greedy_on_device = false;  // batched decode tests: tokens chosen on the backend, no logits copied
    double bandwidth_at_start = 0;  // bytes per second
    BenchModel model;
    std::vector<BenchResult> results;
};

// Now, as reports record when they started: ISO 8601, UTC ("2026-11-26T06:00:00Z").
std::string utc_timestamp_now();

// Decode tests: bytes per second achieved, and its share of the probe.
double achieved_bandwidth(const BenchReport& report, const BenchResult& result);

enum class BenchFormat { Table, Markdown, Csv, Json };

// nullopt for a name that is not one of table, md, csv, json.
std::optional<BenchFormat> parse_bench_format(std::string_view name);

// One CSV line (RFC 4180): the fields joined by commas, each with a comma, quote or line break
// quoted and its quotes doubled.
std::string csv_row(const std::vector<std::string>& fields);

// What goes before the first result (the table's preamble, a header line), after each result,
// and after the last (json: everything).
std::string format_preamble(const BenchReport& report, BenchFormat format);
std::string format_result(const BenchReport& report, const BenchResult& result, BenchFormat format);
std::string format_ending(const BenchReport& report, BenchFormat format);

// An SVG chart of tok/s against depth, one line per test size and config.
std::string plot_svg(const BenchReport& report);

}  // namespace hearth::measure
