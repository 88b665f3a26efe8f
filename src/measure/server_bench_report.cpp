#include "measure/server_bench_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "measure/svg_chart.h"

namespace hearth::measure {
namespace {

using Json = nlohmann::ordered_json;

std::string optional_number(const std::optional<double>& value, const char* format) {
    return value ? fmt::format(fmt::runtime(format), *value) : std::string();
}

Json optional_json(const std::optional<double>& value) {
    return value ? Json(*value) : Json(nullptr);
}

constexpr const char* kTableHeader =
    "| concurrency | requests ok | failed | TTFB p50 ms | TTFB p95 ms | TTFB max ms | tok/s per stream | "
    "tok/s aggregate | generated tokens | prompt tokens (server) | wall s |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";

constexpr const char* kCsvHeader =
    "hearth_version,started_utc,url,api,model,prompt_tokens_requested,generate_tokens_requested,concurrency,"
    "requests,"
    "requests_ok,requests_failed,wall_seconds,ttfb_ms_p50,ttfb_ms_p95,ttfb_ms_max,stream_tokens_per_second_"
    "mean,"
    "aggregate_tokens_per_second,generated_tokens_total,generated_tokens_mean,prompt_tokens_server_mean,"
    "first_error";

std::string table_row(const ServerLevelResult& level) {
    return fmt::format(
        "| {} | {} | {} | {} | {} | {} | {} | {:.2f} | {} | {} | {:.2f} |\n", level.concurrency,
        level.requests_ok, level.requests_failed, optional_number(level.ttfb_ms_p50, "{:.1f}"),
        optional_number(level.ttfb_ms_p95, "{:.1f}"), optional_number(level.ttfb_ms_max, "{:.1f}"),
        optional_number(level.stream_tokens_per_second_mean, "{:.2f}"), level.aggregate_tokens_per_second,
        optional_number(level.generated_tokens_mean, "{:.1f}"),
        optional_number(level.prompt_tokens_mean, "{:.1f}"), level.wall_seconds);
}

std::string csv_line(const ServerBenchReport& report, const ServerLevelResult& level) {
    return csv_row({report.hearth_version,
                    report.started_utc,
                    report.url,
                    std::string(server_api_name(report.api)),
                    report.model,
                    std::to_string(report.prompt_tokens),
                    std::to_string(report.generate_tokens),
                    std::to_string(level.concurrency),
                    std::to_string(level.requests.size()),
                    std::to_string(level.requests_ok),
                    std::to_string(level.requests_failed),
                    fmt::format("{:.6g}", level.wall_seconds),
                    optional_number(level.ttfb_ms_p50, "{:.6g}"),
                    optional_number(level.ttfb_ms_p95, "{:.6g}"),
                    optional_number(level.ttfb_ms_max, "{:.6g}"),
                    optional_number(level.stream_tokens_per_second_mean, "{:.6g}"),
                    fmt::format("{:.6g}", level.aggregate_tokens_per_second),
                    std::to_string(level.generated_tokens_total),
                    optional_number(level.generated_tokens_mean, "{:.6g}"),
                    optional_number(level.prompt_tokens_mean, "{:.6g}"),
                    level.first_error});
}

// The levels that had failures, each with its first error, after the table.
std::string failure_notes(const ServerBenchReport& report) {
    std::string notes;
    for (const ServerLevelResult& level : report.levels) {
        if (level.requests_failed == 0) continue;
        notes += fmt::format("concurrency {}: {} of {} requests failed; the first: {}\n", level.concurrency,
                             level.requests_failed, level.requests.size(), level.first_error);
    }
    return notes.empty() ? notes : "\n" + notes;
}

Json sample_json(const RequestOutcome& r) {
    Json j{{"ok", r.ok()}, {"error", r.ok() ? Json(nullptr) : Json(r.error)}};
    j["ttfb_ms"] = optional_json(r.ttfb_ms);
    j["generated_tokens"] = r.generated_tokens;
    j["prompt_tokens_server"] = r.prompt_tokens ? Json(*r.prompt_tokens) : Json(nullptr);
    j["stream_tokens_per_second"] = optional_json(r.stream_tokens_per_second);
    return j;
}

Json level_json(const ServerLevelResult& level) {
    Json samples = Json::array();
    for (const RequestOutcome& r : level.requests) samples.push_back(sample_json(r));
    Json j{{"concurrency", level.concurrency},
           {"requests", level.requests.size()},
           {"requests_ok", level.requests_ok},
           {"requests_failed", level.requests_failed}};
    j["first_error"] = level.first_error.empty() ? Json(nullptr) : Json(level.first_error);
    j["wall_seconds"] = level.wall_seconds;
    j["ttfb_ms_p50"] = optional_json(level.ttfb_ms_p50);
    j["ttfb_ms_p95"] = optional_json(level.ttfb_ms_p95);
    j["ttfb_ms_max"] = optional_json(level.ttfb_ms_max);
    j["stream_tokens_per_second_mean"] = optional_json(level.stream_tokens_per_second_mean);
    j["aggregate_tokens_per_second"] = level.aggregate_tokens_per_second;
    j["generated_tokens_total"] = level.generated_tokens_total;
    j["generated_tokens_mean"] = optional_json(level.generated_tokens_mean);
    j["prompt_tokens_server_mean"] = optional_json(level.prompt_tokens_mean);
    j["samples"] = std::move(samples);
    return j;
}

std::string report_json(const ServerBenchReport& report) {
    Json levels = Json::array();
    for (const ServerLevelResult& level : report.levels) levels.push_back(level_json(level));
    const Json j{{"schema", "hearth-bench-server/1"},
                 {"hearth_version", report.hearth_version},
                 {"started_utc", report.started_utc},
                 {"server",
                  {{"url", report.url},
                   {"api", server_api_name(report.api)},
                   {"model", report.model},
                   {"model_from_server", report.model_from_server}}},
                 {"prompt_tokens_requested", report.prompt_tokens},
                 {"generate_tokens_requested", report.generate_tokens},
                 {"timeout_seconds", report.timeout_seconds},
                 {"warmup", report.warmup},
                 {"warmup_error", report.warmup_error.empty() ? Json(nullptr) : Json(report.warmup_error)},
                 {"seed", report.seed},
                 {"levels", std::move(levels)}};
    // Errors quote what servers sent, which need not be UTF-8.
    return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace

std::string format_server_preamble(const ServerBenchReport& report, BenchFormat format) {
    switch (format) {
        case BenchFormat::Table:
            return fmt::format(
                       "server: {} ({} API), model {}{}\n"
                       "each request: its own prompt of ~{} tokens (random common words, seed {}), {} tokens "
                       "to generate, greedy, streamed; {}timeout {:g} s\n\n",
                       report.url, server_api_name(report.api), report.model,
                       report.model_from_server ? " (the first it lists)" : "", report.prompt_tokens,
                       report.seed, report.generate_tokens,
                       report.warmup ? "after one untimed warm-up request; " : "", report.timeout_seconds) +
                   kTableHeader;
        case BenchFormat::Markdown:
            return kTableHeader;
        case BenchFormat::Csv:
            return std::string(kCsvHeader) + "\n";
        case BenchFormat::Json:
            return "";
    }
    return "";
}

std::string format_server_level(const ServerBenchReport& report, const ServerLevelResult& level,
                                BenchFormat format) {
    switch (format) {
        case BenchFormat::Table:
        case BenchFormat::Markdown:
            return table_row(level);
        case BenchFormat::Csv:
            return csv_line(report, level);
        case BenchFormat::Json:
            return "";
    }
    return "";
}

std::string format_server_ending(const ServerBenchReport& report, BenchFormat format) {
    switch (format) {
        case BenchFormat::Table:
        case BenchFormat::Markdown:
            return failure_notes(report);
        case BenchFormat::Csv:
            return "";
        case BenchFormat::Json:
            return report_json(report);
    }
    return "";
}

std::string plot_server_svg(const ServerBenchReport& report) {
    ChartSeries aggregate{"aggregate tok/s (all streams)", {}};
    ChartSeries per_stream{"tok/s per stream (mean)", {}};
    for (const ServerLevelResult& level : report.levels) {
        const double c = level.concurrency;
        aggregate.points.emplace_back(c, level.aggregate_tokens_per_second);
        if (level.stream_tokens_per_second_mean)
            per_stream.points.emplace_back(c, *level.stream_tokens_per_second_mean);
    }
    return line_chart_svg(
        {fmt::format("{} at {}: tokens per second against concurrency", report.model, report.url),
         "concurrent requests",
         "tokens per second",
         {aggregate, per_stream}});
}

}  // namespace hearth::measure
