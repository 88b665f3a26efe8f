#include "measure/bench_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/csv_fields.h"

namespace hearth::measure {
namespace {

BenchReport sample_report() {
    BenchReport report;
    report.hearth_version = "9.9.9";
    report.started_utc = "2026-11-26T06:00:00Z";
    report.cpu = "x86-64 avx512 (VNNI)";
    report.cores = 2;
    report.repetitions = 3;
    report.warmup_tokens = 50;
    report.bandwidth_at_start = 40e9;
    report.model = {"models/a, \"b\".gguf", "llama 1B Q4_K_M", 807694656, 1235814432, 816006800};
    const BenchConfig config{2, quant::Type::F16, 512};
    report.results.push_back({{BenchKind::Prompt, 512, 0, config}, summarize({100, 110, 120}), summarize({5000, 4700, 4300}),
                              std::nullopt});
    report.results.push_back({{BenchKind::Decode, 128, 4096, config}, summarize({30, 33, 36}), std::nullopt, 32e9});
    return report;
}

TEST(BenchReport, SummaryIsMeanAndSampleStandardDeviation) {
    const Stats s = summarize({2, 4, 4, 4, 5, 5, 7, 9});
    EXPECT_DOUBLE_EQ(s.mean, 5);
    EXPECT_NEAR(s.stdev, std::sqrt(32.0 / 7), 1e-12);
    EXPECT_EQ(summarize({3}).stdev, 0);
}

TEST(BenchReport, FormatNames) {
    EXPECT_EQ(parse_bench_format("json"), BenchFormat::Json);
    EXPECT_EQ(parse_bench_format("md"), BenchFormat::Markdown);
    EXPECT_EQ(parse_bench_format("csv"), BenchFormat::Csv);
    EXPECT_EQ(parse_bench_format("table"), BenchFormat::Table);
    EXPECT_FALSE(parse_bench_format("xml"));
    EXPECT_FALSE(parse_bench_format("JSON"));
}

// The documented schema (docs/bench-json.md): every field, and the figures derived from the
// samples and the model.
TEST(BenchReport, JsonCarriesEveryFieldOfTheSchema) {
    const BenchReport report = sample_report();
    const auto j = nlohmann::json::parse(format_ending(report, BenchFormat::Json));
    EXPECT_EQ(j["schema"], "hearth-bench/1");
    EXPECT_EQ(j["hearth_version"], "9.9.9");
    EXPECT_EQ(j["machine"]["cores"], 2);
    EXPECT_EQ(j["model"]["path"], "models/a, \"b\".gguf");
    EXPECT_EQ(j["model"]["bytes_read_per_token"], 816006800u);
    EXPECT_EQ(j["warmup_tokens"], 50);
    ASSERT_EQ(j["tests"].size(), 2u);
    const auto& pp = j["tests"][0];
    EXPECT_EQ(pp["name"], "pp512");
    EXPECT_EQ(pp["kind"], "pp");
    EXPECT_EQ(pp["kv_type"], "f16");
    EXPECT_DOUBLE_EQ(pp["tokens_per_second"]["mean"].get<double>(), 110);
    EXPECT_DOUBLE_EQ(pp["tokens_per_second"]["stdev"].get<double>(), 10);
    EXPECT_EQ(pp["tokens_per_second"]["samples"].size(), 3u);
    EXPECT_DOUBLE_EQ(pp["ttft_ms"]["mean"].get<double>(), 4666.666666666667);
    EXPECT_TRUE(pp["achieved_bytes_per_second"].is_null());
    const auto& tg = j["tests"][1];
    EXPECT_EQ(tg["name"], "tg128 @ d4096");
    EXPECT_EQ(tg["depth"], 4096);
    EXPECT_TRUE(tg["ttft_ms"].is_null());
    EXPECT_DOUBLE_EQ(tg["achieved_bytes_per_second"].get<double>(), 33.0 * 816006800);
    EXPECT_DOUBLE_EQ(tg["bandwidth_fraction"].get<double>(), 33.0 * 816006800 / 32e9);
}

// Batched decoding reads the weights once per pass of `streams` tokens: the bandwidth it uses is
// its total rate over the streams times the bytes of one token.
TEST(BenchReport, StreamsShareOneReadOfTheWeights) {
    BenchReport report = sample_report();
    BenchTest batched{BenchKind::Decode, 128, 0, report.results[1].test.config, 16};
    report.results = {{batched, summarize({1600, 1600}), std::nullopt, 32e9}};
    const auto j = nlohmann::json::parse(format_ending(report, BenchFormat::Json));
    const auto& tg = j["tests"][0];
    EXPECT_EQ(tg["name"], "tg128 x16");
    EXPECT_EQ(tg["streams"], 16);
    EXPECT_DOUBLE_EQ(tg["achieved_bytes_per_second"].get<double>(), 100.0 * 816006800);
}

// RFC 4180 fields: a path with a comma and quotes is quoted, its quotes doubled; the header and
// every line have the same number of fields.
TEST(BenchReport, CsvLinesHaveTheHeaderFieldsAndQuoteWhatNeedsIt) {
    const BenchReport report = sample_report();
    const std::string header = format_preamble(report, BenchFormat::Csv);
    const std::string pp = format_result(report, report.results[0], BenchFormat::Csv);
    const std::string tg = format_result(report, report.results[1], BenchFormat::Csv);
    EXPECT_NE(pp.find(",\"models/a, \"\"b\"\".gguf\","), std::string::npos) << pp;
    const auto field_count = hearth::testing::csv_field_count;
    EXPECT_EQ(field_count(pp), field_count(header));
    EXPECT_EQ(field_count(tg), field_count(header));
    EXPECT_NE(tg.find(",tg128 @ d4096,tg,128,4096,3,33,3,,,"), std::string::npos) << tg;
    EXPECT_NE(tg.find(",30;33;36,on,1\n"), std::string::npos) << tg;
}

TEST(BenchReport, TableAndMarkdownRowsNameTheTestBeforeItsRate) {
    const BenchReport report = sample_report();
    EXPECT_EQ(format_result(report, report.results[0], BenchFormat::Table),
              "| pp512 | 110.00 ± 10.00 | 4666.67 ± 351.19 |  |  | 2 | f16 | on |\n");
    // 33 tok/s x 0.816 GB = 26.9 GB/s, 84 % of the 32 GB/s probe.
    EXPECT_EQ(format_result(report, report.results[1], BenchFormat::Table),
              "| tg128 @ d4096 | 33.00 ± 3.00 |  | 26.9 | 84 % of 32.0 | 2 | f16 | on |\n");
    EXPECT_EQ(format_result(report, report.results[0], BenchFormat::Markdown),
              "| llama 1B Q4_K_M | 770.28 MiB | 1.24 B | CPU | 2 | f16 | 1 | pp512 | 110.00 ± 10.00 |\n");
}

// The chart: one line per test size and config, its points left to right by depth, a higher
// rate drawn higher (smaller y).
TEST(BenchReport, PlotDrawsOneLinePerTestWithDepthOnX) {
    BenchReport report = sample_report();
    const BenchConfig config{2, quant::Type::F16, 512};
    report.results.clear();
    for (const auto& [depth, rate] : {std::pair{0, 40.0}, std::pair{1024, 35.0}, std::pair{4096, 20.0}})
        report.results.push_back({{BenchKind::Decode, 128, depth, config}, summarize({rate}), std::nullopt, 30e9});
    report.results.push_back({{BenchKind::Prompt, 512, 0, config}, summarize({100}), summarize({5}), std::nullopt});
    const std::string svg = plot_svg(report);
    EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
    EXPECT_NE(svg.find("</svg>"), std::string::npos);
    const std::regex line(R"rx(<polyline class="series"[^>]* points="([^"]*)"/>)rx");
    std::vector<std::vector<std::pair<double, double>>> lines;
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), line); it != std::sregex_iterator(); ++it) {
        std::istringstream points((*it)[1].str());
        std::vector<std::pair<double, double>> parsed;
        std::string point;
        while (points >> point) {
            const size_t comma = point.find(',');
            parsed.emplace_back(std::stod(point.substr(0, comma)), std::stod(point.substr(comma + 1)));
        }
        lines.push_back(parsed);
    }
    ASSERT_EQ(lines.size(), 2u);  // pp512 and tg128
    const auto& pp = lines[0].size() == 1 ? lines[0] : lines[1];
    const auto& tg = lines[0].size() == 1 ? lines[1] : lines[0];
    ASSERT_EQ(tg.size(), 3u);
    EXPECT_LT(tg[0].first, tg[1].first);
    EXPECT_LT(tg[1].first, tg[2].first);
    EXPECT_LT(tg[0].second, tg[1].second);  // 40 tok/s above 35 above 20
    EXPECT_LT(tg[1].second, tg[2].second);
    EXPECT_LT(pp[0].second, tg[0].second);  // 100 tok/s above 40
    EXPECT_EQ(pp[0].first, tg[0].first);    // both at depth 0
}

}  // namespace
}  // namespace hearth::measure
