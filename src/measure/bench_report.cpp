#include "measure/bench_report.h"

#include <cmath>
#include <ctime>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "measure/svg_chart.h"
#include "quant/quant.h"

namespace hearth::measure {

Stats summarize(std::vector<double> samples) {
    Stats s;
    s.samples = std::move(samples);
    if (s.samples.empty()) return s;
    for (const double v : s.samples) s.mean += v;
    s.mean /= static_cast<double>(s.samples.size());
    double squares = 0;
    for (const double v : s.samples) squares += (v - s.mean) * (v - s.mean);
    s.stdev = s.samples.size() > 1 ? std::sqrt(squares / static_cast<double>(s.samples.size() - 1)) : 0;
    return s;
}

std::string utc_timestamp_now() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

double achieved_bandwidth(const BenchReport& report, const BenchResult& result) {
    // A pass of several streams reads the weights once for all of them.
    return result.tokens_per_second.mean / result.test.streams * static_cast<double>(report.model.bytes_read_per_token);
}

std::optional<BenchFormat> parse_bench_format(std::string_view name) {
    if (name == "table") return BenchFormat::Table;
    if (name == "md") return BenchFormat::Markdown;
    if (name == "csv") return BenchFormat::Csv;
    if (name == "json") return BenchFormat::Json;
    return std::nullopt;
}

namespace {

std::string kv_name(const BenchTest& test) { return std::string(quant::type_name(test.config.kv_type)); }

std::string mean_and_stdev(const Stats& s) { return fmt::format("{:.2f} ± {:.2f}", s.mean, s.stdev); }

// llama-bench's units: GiB or MiB for the file, B or M for the parameters.
std::string file_size_label(uint64_t bytes) {
    const double gib = static_cast<double>(bytes) / (1ull << 30);
    return gib >= 1 ? fmt::format("{:.2f} GiB", gib) : fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1 << 20));
}
std::string parameter_label(uint64_t parameters) {
    const double p = static_cast<double>(parameters);
    return p >= 1e9 ? fmt::format("{:.2f} B", p / 1e9) : fmt::format("{:.2f} M", p / 1e6);
}

// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
std::string csv_field(const std::string& value) {
    if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
    std::string quoted = "\"";
    for (const char c : value) {
        if (c == '"') quoted += '"';
        quoted += c;
    }
    return quoted + "\"";
}

std::string join(const std::vector<std::string>& parts, char separator) {
    std::string joined;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) joined += separator;
        joined += parts[i];
    }
    return joined;
}

std::string optional_number(const std::optional<double>& value, const char* format = "{:.6g}") {
    return value ? fmt::format(fmt::runtime(format), *value) : std::string();
}

constexpr const char* kCsvHeader =
    "hearth_version,model,model_description,model_bytes,parameters,bytes_read_per_token,backend,threads,kv_type,"
    "batch_size,test,kind,tokens,depth,repetitions,tokens_per_second_mean,tokens_per_second_stdev,ttft_ms_mean,"
    "ttft_ms_stdev,achieved_gb_per_second,probed_gb_per_second,bandwidth_percent,tokens_per_second_samples,"
    "flash_attention,streams";

std::string csv_line(const BenchReport& report, const BenchResult& r) {
    const BenchTest& t = r.test;
    std::vector<std::string> samples;
    for (const double v : r.tokens_per_second.samples) samples.push_back(fmt::format("{:.6g}", v));
    std::optional<double> achieved, probed, percent;
    if (r.probed_bandwidth) {
        achieved = achieved_bandwidth(report, r) / 1e9;
        probed = *r.probed_bandwidth / 1e9;
        percent = 100 * achieved_bandwidth(report, r) / *r.probed_bandwidth;
    }
    const auto& ttft = r.time_to_first_token_ms;
    const std::vector<std::string> fields{
        report.hearth_version,
        report.model.path,
        report.model.description,
        std::to_string(report.model.file_bytes),
        std::to_string(report.model.parameters),
        std::to_string(report.model.bytes_read_per_token),
        report.backend,
        std::to_string(t.config.threads),
        kv_name(t),
        std::to_string(t.config.batch_size),
        test_name(t),
        std::string(kind_name(t.kind)),
        std::to_string(t.tokens),
        std::to_string(t.depth),
        std::to_string(r.tokens_per_second.samples.size()),
        fmt::format("{:.6g}", r.tokens_per_second.mean),
        fmt::format("{:.6g}", r.tokens_per_second.stdev),
        ttft ? fmt::format("{:.6g}", ttft->mean) : "",
        ttft ? fmt::format("{:.6g}", ttft->stdev) : "",
        optional_number(achieved),
        optional_number(probed),
        optional_number(percent, "{:.4g}"),
        join(samples, ';'),
        t.config.flash_attention ? "on" : "off",
        std::to_string(t.streams)};
    return csv_row(fields);
}

nlohmann::ordered_json stats_json(const Stats& s) {
    return {{"mean", s.mean}, {"stdev", s.stdev}, {"samples", s.samples}};
}

nlohmann::ordered_json result_json(const BenchReport& report, const BenchResult& r) {
    const BenchTest& t = r.test;
    nlohmann::ordered_json j{{"name", test_name(t)},
                             {"kind", kind_name(t.kind)},
                             {"tokens", t.tokens},
                             {"depth", t.depth},
                             {"threads", t.config.threads},
                             {"kv_type", kv_name(t)},
                             {"flash_attention", t.config.flash_attention},
                             {"batch_size", t.config.batch_size},
                             {"streams", t.streams},
                             {"tokens_per_second", stats_json(r.tokens_per_second)}};
    j["ttft_ms"] = r.time_to_first_token_ms ? stats_json(*r.time_to_first_token_ms) : nullptr;
    if (r.probed_bandwidth) {
        j["achieved_bytes_per_second"] = achieved_bandwidth(report, r);
        j["probed_bytes_per_second"] = *r.probed_bandwidth;
        j["bandwidth_fraction"] = achieved_bandwidth(report, r) / *r.probed_bandwidth;
    } else {
        j["achieved_bytes_per_second"] = nullptr;
        j["probed_bytes_per_second"] = nullptr;
        j["bandwidth_fraction"] = nullptr;
    }
    return j;
}

std::string report_json(const BenchReport& report) {
    nlohmann::ordered_json tests = nlohmann::ordered_json::array();
    for (const BenchResult& r : report.results) tests.push_back(result_json(report, r));
    const nlohmann::ordered_json j{
        {"schema", "hearth-bench/1"},
        {"hearth_version", report.hearth_version},
        {"started_utc", report.started_utc},
        {"machine", {{"cpu", report.cpu}, {"cores", report.cores}}},
        {"backend", report.backend},
        {"repetitions", report.repetitions},
        {"warmup_tokens", report.warmup_tokens},
        {"warmup_each_test", report.warmup_each_test},
        {"greedy_on_device", report.greedy_on_device},
        {"bandwidth_at_start_bytes_per_second", report.bandwidth_at_start},
        {"model",
         {{"path", report.model.path},
          {"description", report.model.description},
          {"file_bytes", report.model.file_bytes},
          {"parameters", report.model.parameters},
          {"bytes_read_per_token", report.model.bytes_read_per_token}}},
        {"tests", tests}};
    return j.dump(2) + "\n";
}

}  // namespace

std::string csv_row(const std::vector<std::string>& fields) {
    std::vector<std::string> quoted;
    for (const std::string& f : fields) quoted.push_back(csv_field(f));
    return join(quoted, ',') + "\n";
}

std::string format_preamble(const BenchReport& report, BenchFormat format) {
    switch (format) {
        case BenchFormat::Table:
            return fmt::format(
                "read bandwidth: {:.1f} GB/s\n"
                "model: {} ({}, {}, {} parameters), {:.2f} GB read per token; backend {}, {} repetitions after a "
                "warm-up of {} tokens{}{}\n\n"
                "| test | t/s | TTFT ms | GB/s | % of read bandwidth (GB/s, probed just before) | threads | kv | fa |\n"
                "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
                report.bandwidth_at_start / 1e9, report.model.path, report.model.description,
                file_size_label(report.model.file_bytes), parameter_label(report.model.parameters),
                static_cast<double>(report.model.bytes_read_per_token) / 1e9, report.backend, report.repetitions,
                report.warmup_tokens, report.warmup_each_test ? " and one untimed run of each test" : "",
                report.greedy_on_device ? "; batched decoding picks its greedy tokens on the backend" : "");
        case BenchFormat::Markdown:
            return "| model | size | params | backend | threads | type_k | fa | test | t/s |\n"
                   "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |\n";
        case BenchFormat::Csv: return std::string(kCsvHeader) + "\n";
        case BenchFormat::Json: return "";
    }
    return "";
}

std::string format_result(const BenchReport& report, const BenchResult& r, BenchFormat format) {
    const BenchTest& t = r.test;
    switch (format) {
        case BenchFormat::Table: {
            const std::string ttft = r.time_to_first_token_ms ? mean_and_stdev(*r.time_to_first_token_ms) : "";
            std::string gbs, share;
            if (r.probed_bandwidth) {
                const double achieved = achieved_bandwidth(report, r);
                gbs = fmt::format("{:.1f}", achieved / 1e9);
                share = fmt::format("{:.0f} % of {:.1f}", 100 * achieved / *r.probed_bandwidth, *r.probed_bandwidth / 1e9);
            }
            return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", test_name(t),
                               mean_and_stdev(r.tokens_per_second), ttft, gbs, share, t.config.threads, kv_name(t),
                               t.config.flash_attention ? "on" : "off");
        }
        case BenchFormat::Markdown:
            return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", report.model.description,
                               file_size_label(report.model.file_bytes), parameter_label(report.model.parameters),
                               report.backend == "cpu" ? "CPU" : report.backend, t.config.threads, kv_name(t),
                               t.config.flash_attention ? 1 : 0, test_name(t), mean_and_stdev(r.tokens_per_second));
        case BenchFormat::Csv: return csv_line(report, r);
        case BenchFormat::Json: return "";
    }
    return "";
}

std::string format_ending(const BenchReport& report, BenchFormat format) {
    return format == BenchFormat::Json ? report_json(report) : "";
}

std::string plot_svg(const BenchReport& report) {
    // One series per test without its depth: its points are (depth, mean tok/s).
    std::map<std::string, ChartSeries> series;
    for (const BenchResult& r : report.results) {
        BenchTest shallow = r.test;
        shallow.depth = 0;
        const std::string label = fmt::format("{}, {} threads, kv {}{}", test_name(shallow), r.test.config.threads,
                                              kv_name(r.test), r.test.config.flash_attention ? "" : ", fa off");
        series[label].label = label;
        series[label].points.emplace_back(static_cast<double>(r.test.depth), r.tokens_per_second.mean);
    }
    LineChart chart{report.model.description + ": tokens per second against depth",
                    "depth (tokens already in the context)", "tokens per second", {}};
    for (auto& [label, line] : series) chart.series.push_back(std::move(line));
    return line_chart_svg(chart);
}

}  // namespace hearth::measure
