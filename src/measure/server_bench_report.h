// What `hearth bench --server` found, in the four formats of `hearth bench`:
//  table     for people: a line on the server and the requests, a row per concurrency level,
//            then the first error of each level that had failures
//  md        the same rows as a bare markdown table (and the errors after it)
//  csv       one line per level, every field
//  json      the whole report, per-request samples included; schema hearth-bench-server/1,
//            stable and documented in docs/bench-json.md
// Table, md and csv stream a row per level as it finishes; json is written at the end.
#pragma once

#include <string>

#include "measure/bench_report.h"
#include "measure/server_bench.h"

namespace hearth::measure {

std::string format_server_preamble(const ServerBenchReport& report, BenchFormat format);
std::string format_server_level(const ServerBenchReport& report, const ServerLevelResult& level,
                                BenchFormat format);
std::string format_server_ending(const ServerBenchReport& report, BenchFormat format);

// Aggregate and mean per-stream tok/s against concurrency.
std::string plot_server_svg(const ServerBenchReport& report);

}  // namespace hearth::measure
