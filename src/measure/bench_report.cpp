#include "measure/bench_report.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

double achieved_bandwidth(const BenchReport& report, const BenchResult& result) {
    return result.tokens_per_second.mean * static_cast<double>(report.model.bytes_read_per_token);
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
    "ttft_ms_stdev,achieved_gb_per_second,probed_gb_per_second,bandwidth_percent,tokens_per_second_samples";

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
        join(samples, ';')};
    std::vector<std::string> quoted;
    for (const std::string& f : fields) quoted.push_back(csv_field(f));
    return join(quoted, ',') + "\n";
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
                             {"batch_size", t.config.batch_size},
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

std::string format_preamble(const BenchReport& report, BenchFormat format) {
    switch (format) {
        case BenchFormat::Table:
            return fmt::format(
                "read bandwidth: {:.1f} GB/s\n"
                "model: {} ({}, {}, {} parameters), {:.2f} GB read per token; backend {}, {} repetitions after a "
                "warm-up of {} tokens\n\n"
                "| test | t/s | TTFT ms | GB/s | % of read bandwidth (GB/s, probed just before) | threads | kv |\n"
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n",
                report.bandwidth_at_start / 1e9, report.model.path, report.model.description,
                file_size_label(report.model.file_bytes), parameter_label(report.model.parameters),
                static_cast<double>(report.model.bytes_read_per_token) / 1e9, report.backend, report.repetitions,
                report.warmup_tokens);
        case BenchFormat::Markdown:
            return "| model | size | params | backend | threads | type_k | test | t/s |\n"
                   "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: |\n";
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
            return fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", test_name(t), mean_and_stdev(r.tokens_per_second),
                               ttft, gbs, share, t.config.threads, kv_name(t));
        }
        case BenchFormat::Markdown:
            return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", report.model.description,
                               file_size_label(report.model.file_bytes), parameter_label(report.model.parameters),
                               report.backend == "cpu" ? "CPU" : report.backend, t.config.threads, kv_name(t),
                               test_name(t), mean_and_stdev(r.tokens_per_second));
        case BenchFormat::Csv: return csv_line(report, r);
        case BenchFormat::Json: return "";
    }
    return "";
}

std::string format_ending(const BenchReport& report, BenchFormat format) {
    return format == BenchFormat::Json ? report_json(report) : "";
}

namespace {

// 1, 2 or 5 times a power of ten: tick spacing for about `ticks` steps up to `top`.
double nice_step(double top, int ticks) {
    const double raw = std::max(top, 1e-9) / ticks;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    for (const double m : {1.0, 2.0, 5.0})
        if (raw <= m * magnitude) return m * magnitude;
    return 10 * magnitude;
}

std::string xml_escape(const std::string& text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace

std::string plot_svg(const BenchReport& report) {
    // One series per test without its depth: its points are (depth, mean tok/s).
    std::map<std::string, std::vector<std::pair<double, double>>> series;
    double max_depth = 0, max_rate = 0;
    for (const BenchResult& r : report.results) {
        BenchTest shallow = r.test;
        shallow.depth = 0;
        const std::string label =
            fmt::format("{}, {} threads, kv {}", test_name(shallow), r.test.config.threads, kv_name(r.test));
        series[label].emplace_back(static_cast<double>(r.test.depth), r.tokens_per_second.mean);
        max_depth = std::max(max_depth, static_cast<double>(r.test.depth));
        max_rate = std::max(max_rate, r.tokens_per_second.mean);
    }
    constexpr double kWidth = 760, kHeight = 440, kLeft = 70, kRight = 250, kTop = 40, kBottom = 50;
    const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
    const double x_step = nice_step(std::max(max_depth, 1.0), 5), y_step = nice_step(max_rate, 5);
    const double x_top = std::max(x_step, std::ceil(max_depth / x_step) * x_step);
    const double y_top = std::max(y_step, std::ceil(max_rate / y_step) * y_step);
    auto px = [&](double depth) { return kLeft + plot_w * depth / x_top; };
    auto py = [&](double rate) { return kTop + plot_h * (1 - rate / y_top); };

    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        "<text x=\"{2}\" y=\"22\" font-size=\"14\">{3}: tokens per second against depth</text>\n",
        kWidth, kHeight, kLeft, xml_escape(report.model.description));
    for (double x = 0; x <= x_top + x_step / 2; x += x_step) {
        svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>"
                           "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                           px(x), kTop, kTop + plot_h, kTop + plot_h + 16, x);
    }
    for (double y = 0; y <= y_top + y_step / 2; y += y_step) {
        svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
                           "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:g}</text>\n",
                           kLeft, py(y), kLeft + plot_w, kLeft - 6, py(y) + 4, y);
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">depth (tokens already in the context)</text>\n",
                       kLeft + plot_w / 2, kHeight - 10);
    svg += fmt::format("<text x=\"16\" y=\"{:.1f}\" transform=\"rotate(-90 16 {:.1f})\" text-anchor=\"middle\">"
                       "tokens per second</text>\n",
                       kTop + plot_h / 2, kTop + plot_h / 2);
    static constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                              "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    int index = 0;
    for (auto& [label, points] : series) {
        std::sort(points.begin(), points.end());
        const char* color = kColors[index % std::size(kColors)];
        std::string coordinates;
        for (const auto& [depth, rate] : points) coordinates += fmt::format("{:.1f},{:.1f} ", px(depth), py(rate));
        coordinates.pop_back();
        svg += fmt::format("<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                           color, coordinates);
        for (const auto& [depth, rate] : points)
            svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(depth), py(rate), color);
        const double legend_y = kTop + 10 + 18 * index;
        svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"{3}\" stroke-width=\"2\"/>"
                           "<text x=\"{4}\" y=\"{5:.1f}\">{6}</text>\n",
                           kLeft + plot_w + 16, legend_y, kLeft + plot_w + 36, color, kLeft + plot_w + 42,
                           legend_y + 4, xml_escape(label));
        ++index;
    }
    return svg + "</svg>\n";
}

}  // namespace hearth::measure
