#include "measure/server_bench.h"

#include <gtest/gtest.h>

#include <iterator>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/csv_fields.h"
#include "common/error.h"
#include "measure/server_bench_report.h"
#include "measure/server_stream.h"

namespace hearth::measure {
namespace {

// numpy.percentile's default (linear between closest ranks): the expected values are numpy's.
TEST(ServerBench, PercentileInterpolatesBetweenClosestRanksAsNumpy) {
    EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.50), 2.5);
    EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.95), 3.85);
    EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.0), 1);
    EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 1.0), 4);
    EXPECT_DOUBLE_EQ(percentile({7}, 0.95), 7);
    // np.percentile([10, 20, 30, 40, 50, 60, 70, 80, 90, 1000], 95) = 590.5
    EXPECT_NEAR(percentile({1000, 10, 20, 30, 40, 50, 60, 70, 80, 90}, 0.95), 590.5, 1e-9);
    EXPECT_THROW(percentile({}, 0.5), Error);
}

std::vector<StreamEvent> parse_whole(ServerApi api, std::string_view body) {
    StreamParser parser(api);
    std::vector<StreamEvent> events = parser.feed(body);
    for (StreamEvent& e : parser.finish()) events.push_back(std::move(e));
    return events;
}

std::vector<StreamEvent> parse_in_pieces(ServerApi api, std::string_view body,
                                         const std::vector<size_t>& cuts) {
    StreamParser parser(api);
    std::vector<StreamEvent> events;
    size_t start = 0;
    for (const size_t cut : cuts) {
        for (StreamEvent& e : parser.feed(body.substr(start, cut - start))) events.push_back(std::move(e));
        start = cut;
    }
    for (StreamEvent& e : parser.feed(body.substr(start))) events.push_back(std::move(e));
    for (StreamEvent& e : parser.finish()) events.push_back(std::move(e));
    return events;
}

std::string describe(const std::vector<StreamEvent>& events) {
    std::ostringstream out;
    for (const StreamEvent& e : events) {
        out << "[" << e.text << "|" << (e.generated_tokens ? std::to_string(*e.generated_tokens) : "-") << "|"
            << (e.prompt_tokens ? std::to_string(*e.prompt_tokens) : "-") << "|" << e.done << "|" << e.error
            << "]";
    }
    return out.str();
}

// Every way of cutting the body in two, and many random cuts into several pieces (a cut may fall
// inside a UTF-8 sequence or between \r and \n), give the events of the whole body.
void expect_same_events_however_split(ServerApi api, const std::string& body) {
    const std::string whole = describe(parse_whole(api, body));
    for (size_t cut = 0; cut <= body.size(); ++cut)
        ASSERT_EQ(describe(parse_in_pieces(api, body, {cut})), whole) << "cut at byte " << cut;
    std::mt19937 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
        std::set<size_t> cuts;
        const int pieces = 1 + static_cast<int>(rng() % 12);
        for (int i = 0; i < pieces; ++i) cuts.insert(rng() % (body.size() + 1));
        ASSERT_EQ(describe(parse_in_pieces(api, body, {cuts.begin(), cuts.end()})), whole)
            << "trial " << trial;
    }
}

// Ollama's /api/generate stream as Ollama sends it (fields it adds that a bench ignores included).
const std::string kOllamaStream =
    "{\"model\":\"llama3.2:1b\",\"created_at\":\"2026-01-01T00:00:00Z\",\"response\":\"Hello\",\"done\":"
    "false}\n"
    "{\"model\":\"llama3.2:1b\",\"created_at\":\"2026-01-01T00:00:00Z\",\"response\":\" "
    "w\xc3\xb6rld\",\"done\":false}\n"
    "\n"
    "{\"model\":\"llama3.2:1b\",\"response\":\"\",\"done\":true,\"done_reason\":\"length\",\"context\":[1,2],"
    "\"total_duration\":123,\"prompt_eval_count\":26,\"eval_count\":2,\"eval_duration\":9}\n";

TEST(StreamParser, OllamaNdjsonGivesTextThenTheServersCounts) {
    const auto events = parse_whole(ServerApi::Ollama, kOllamaStream);
    ASSERT_EQ(events.size(), 3u) << describe(events);
    EXPECT_EQ(events[0].text, "Hello");
    EXPECT_EQ(events[1].text, " w\xc3\xb6rld");
    EXPECT_FALSE(events[1].done);
    EXPECT_TRUE(events[2].done);
    EXPECT_EQ(events[2].text, "");
    EXPECT_EQ(events[2].generated_tokens, 2);
    EXPECT_EQ(events[2].prompt_tokens, 26);
    for (const StreamEvent& e : events) EXPECT_EQ(e.error, "");
}

TEST(StreamParser, OllamaNdjsonSplitAnywhere) {
    expect_same_events_however_split(ServerApi::Ollama, kOllamaStream);
    std::string crlf;  // CRLF line ends, and a last line without its newline
    for (const char c : kOllamaStream) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    crlf.resize(crlf.size() - 2);
    EXPECT_EQ(describe(parse_whole(ServerApi::Ollama, crlf)),
              describe(parse_whole(ServerApi::Ollama, kOllamaStream)));
    expect_same_events_however_split(ServerApi::Ollama, crlf);
}

TEST(StreamParser, OllamaErrorsAndMalformedLinesAreErrorsWithTheLine) {
    auto one = [](const std::string& line) {
        const auto events = parse_whole(ServerApi::Ollama, line + "\n");
        EXPECT_EQ(events.size(), 1u) << describe(events);
        return events.empty() ? std::string() : events[0].error;
    };
    EXPECT_EQ(one("{\"error\":\"model 'x' not found\"}"), "model 'x' not found");
    EXPECT_EQ(one("{\"response\":\"a\",\"done\":fal"),
              "malformed NDJSON line: {\"response\":\"a\",\"done\":fal");
    EXPECT_NE(one("data: {\"choices\":[]}").find("is it --api openai?"), std::string::npos);
    EXPECT_NE(one("[1,2]").find("malformed NDJSON line"), std::string::npos);
    EXPECT_NE(one("{\"response\":5,\"done\":false}").find("'response' is not a string"), std::string::npos);
    EXPECT_NE(one("{\"response\":\"\",\"done\":\"yes\"}").find("'done' is not true or false"),
              std::string::npos);
    EXPECT_NE(
        one("{\"response\":\"\",\"done\":true,\"eval_count\":-3}").find("'eval_count' is not a token count"),
        std::string::npos);
    EXPECT_NE(one("{\"response\":\"\",\"done\":true,\"eval_count\":2.5}").find("'eval_count'"),
              std::string::npos);
    // Control bytes of a malformed line are not echoed into the message.
    EXPECT_EQ(one(std::string("{\x01\x02")), "malformed NDJSON line: {??");
}

TEST(StreamParser, ALineWithoutEndIsAnErrorOnceNotUnboundedMemory) {
    StreamParser parser(ServerApi::Ollama);
    const std::string megabyte(StreamParser::kMaxLineBytes / 4, 'x');
    std::vector<StreamEvent> events;
    for (int i = 0; i < 8; ++i)
        for (StreamEvent& e : parser.feed(megabyte)) events.push_back(std::move(e));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_NE(events[0].error.find("a line longer than"), std::string::npos);
    // After the newline the parser reads lines again.
    const auto after = parser.feed("x\n{\"response\":\"ok\",\"done\":false}\n");
    ASSERT_EQ(after.size(), 1u) << describe(after);
    EXPECT_EQ(after[0].text, "ok");
}

// llama-server's /v1/completions stream: a ping comment, text chunks, the final chunk with
// finish_reason and usage, [DONE]; then OpenAI's own shape, usage in a chunk with no choices.
const std::string kOpenAiStream =
    ": ping\n\n"
    "data: {\"choices\":[{\"text\":\"Hello\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}],"
    "\"object\":\"text_completion\"}\n\n"
    "event: message\nid: 7\n"
    "data: {\"choices\":[{\"text\":\" w\xc3\xb6rld\",\"index\":0,\"finish_reason\":null}]}\n\n"
    "data: {\"choices\":[{\"text\":\"\",\"index\":0,\"finish_reason\":\"length\"}],"
    "\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":26,\"total_tokens\":28},\"timings\":{}}\n\n"
    "data: {\"choices\":[],\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":26}}\n\n"
    "data: [DONE]\n\n";

TEST(StreamParser, OpenAiServerSentEventsGiveTextUsageAndDone) {
    const auto events = parse_whole(ServerApi::OpenAi, kOpenAiStream);
    ASSERT_EQ(events.size(), 5u) << describe(events);
    EXPECT_EQ(events[0].text, "Hello");
    EXPECT_EQ(events[1].text, " w\xc3\xb6rld");
    EXPECT_EQ(events[2].generated_tokens, 2);
    EXPECT_EQ(events[2].prompt_tokens, 26);
    EXPECT_EQ(events[3].text, "");
    EXPECT_FALSE(events[3].done);
    EXPECT_TRUE(events[4].done);
    for (const StreamEvent& e : events) EXPECT_EQ(e.error, "");
}

TEST(StreamParser, OpenAiServerSentEventsSplitAnywhere) {
    expect_same_events_however_split(ServerApi::OpenAi, kOpenAiStream);
    std::string crlf;
    for (const char c : kOpenAiStream) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    EXPECT_EQ(describe(parse_whole(ServerApi::OpenAi, crlf)),
              describe(parse_whole(ServerApi::OpenAi, kOpenAiStream)));
    expect_same_events_however_split(ServerApi::OpenAi, crlf);
}

TEST(StreamParser, OpenAiEventsEndAtABlankLineAndJoinTheirDataLines) {
    // Two data lines of one event are one JSON document joined by '\n' (the SSE rule).
    const auto events = parse_whole(ServerApi::OpenAi, "data: {\"choices\":\ndata: [{\"text\":\"a\"}]}\n\n");
    ASSERT_EQ(events.size(), 1u) << describe(events);
    EXPECT_EQ(events[0].text, "a");
    // The last event counts at the end of the body even without its blank line.
    const auto unterminated = parse_whole(ServerApi::OpenAi, "data: [DONE]");
    ASSERT_EQ(unterminated.size(), 1u);
    EXPECT_TRUE(unterminated[0].done);
    // Nothing is dispatched before the blank line comes.
    StreamParser parser(ServerApi::OpenAi);
    EXPECT_TRUE(parser.feed("data: {\"choices\":[{\"text\":\"a\"}]}\n").empty());
    EXPECT_EQ(parser.feed("\n").size(), 1u);
}

TEST(StreamParser, OpenAiErrorsAndMalformedEvents) {
    auto one = [](const std::string& body) {
        const auto events = parse_whole(ServerApi::OpenAi, body);
        EXPECT_EQ(events.size(), 1u) << describe(events);
        return events.empty() ? std::string() : events[0].error;
    };
    EXPECT_EQ(one("data: {\"error\":{\"code\":500,\"message\":\"the context is "
                  "full\",\"type\":\"server_error\"}}\n\n"),
              "the context is full");
    EXPECT_EQ(one("error: {\"message\":\"old llama-server\"}\n\n"), "{\"message\":\"old llama-server\"}");
    EXPECT_EQ(one("data: {\"choices\":[{\"text\":\"a\"\n\n"),
              "malformed server-sent event data: {\"choices\":[{\"text\":\"a\"");
    EXPECT_NE(one("data: {\"choices\":[{\"text\":7}]}\n\n").find("'choices' has no text"), std::string::npos);
    EXPECT_NE(one("data: {\"choices\":\"a\"}\n\n").find("'choices' has no text"), std::string::npos);
    EXPECT_NE(
        one("data: {\"choices\":[],\"usage\":{\"completion_tokens\":\"2\"}}\n\n").find("completion_tokens"),
        std::string::npos);
    EXPECT_NE(one("{\"model\":\"x\",\"response\":\"a\",\"done\":false}\n").find("is it --api ollama?"),
              std::string::npos);
}

TEST(StreamParser, ErrorBodiesOfBothApis) {
    EXPECT_EQ(json_error_message("{\"error\":\"model 'x' not found\"}"), "model 'x' not found");
    EXPECT_EQ(json_error_message("{\"error\":{\"code\":400,\"message\":\"bad\",\"type\":\"x\"}}"), "bad");
    EXPECT_EQ(json_error_message("{\"error\":{\"code\":400}}"), "{\"code\":400}");
    EXPECT_FALSE(json_error_message("{\"error\":null}"));
    EXPECT_FALSE(json_error_message("File Not Found"));
    EXPECT_FALSE(json_error_message("[\"error\"]"));
}

TEST(StreamTally, TimesTheFirstAndLastTextAndPrefersTheServersCount) {
    StreamTally tally;
    StreamEvent empty, text, last;
    text.text = "a";
    last.done = true;
    last.generated_tokens = 5;
    last.prompt_tokens = 40;
    tally.add(empty, 0.010);  // headers and an empty first chunk are not the first byte of text
    tally.add(text, 0.150);
    tally.add(text, 0.160);
    tally.add(text, 0.170);
    tally.add(last, 0.180);
    const RequestOutcome outcome = tally.outcome("");
    EXPECT_TRUE(outcome.ok()) << outcome.error;
    EXPECT_DOUBLE_EQ(*outcome.ttfb_ms, 150);
    EXPECT_EQ(outcome.generated_tokens, 5);  // the server's count over the 3 text chunks
    EXPECT_EQ(outcome.prompt_tokens, 40);
    EXPECT_NEAR(*outcome.stream_tokens_per_second, 4 / 0.020, 1e-6);
}

TEST(StreamTally, CountsTextChunksWithoutAServerCount) {
    StreamTally tally;
    StreamEvent text, done;
    text.text = "a";
    done.done = true;
    for (int i = 0; i < 4; ++i) tally.add(text, 0.1 + 0.01 * i);
    tally.add(done, 0.2);
    const RequestOutcome outcome = tally.outcome("");
    EXPECT_EQ(outcome.generated_tokens, 4);
    EXPECT_FALSE(outcome.prompt_tokens);
    EXPECT_NEAR(*outcome.stream_tokens_per_second, 3 / 0.03, 1e-6);
}

TEST(StreamTally, FailsWithoutTheLastMessageOrOnAnyError) {
    StreamEvent text, error, done;
    text.text = "a";
    error.error = "boom";
    done.done = true;
    StreamTally unfinished;
    unfinished.add(text, 0.1);
    EXPECT_NE(unfinished.outcome("").error.find("ended before"), std::string::npos);
    EXPECT_EQ(unfinished.outcome("the connection broke").error, "the connection broke");
    StreamTally failed;
    failed.add(text, 0.1);
    failed.add(error, 0.2);
    failed.add(done, 0.3);
    EXPECT_EQ(failed.outcome("cancelled").error, "boom");  // the server's word over the transport's
    StreamTally single;                                    // one token: no decode rate
    single.add(text, 0.1);
    single.add(done, 0.1);
    EXPECT_TRUE(single.outcome("").ok());
    EXPECT_FALSE(single.outcome("").stream_tokens_per_second);
}

RequestOutcome ok_request(double ttfb_ms, int64_t tokens, double rate) {
    RequestOutcome r;
    r.ttfb_ms = ttfb_ms;
    r.generated_tokens = tokens;
    r.stream_tokens_per_second = rate;
    r.prompt_tokens = 500;
    return r;
}

TEST(ServerBench, LevelSummaryCountsOnlySuccessfulRequestsAndKeepsTheFirstError) {
    RequestOutcome failed_a, failed_b;
    failed_a.error = "HTTP 500: first";
    failed_a.generated_tokens = 7;
    failed_b.error = "HTTP 500: second";
    const ServerLevelResult level = summarize_level(
        4, {ok_request(100, 200, 50), failed_a, ok_request(300, 200, 40), ok_request(200, 100, 30), failed_b},
        2.0);
    EXPECT_EQ(level.concurrency, 4);
    EXPECT_EQ(level.requests.size(), 5u);
    EXPECT_EQ(level.requests_ok, 3);
    EXPECT_EQ(level.requests_failed, 2);
    EXPECT_EQ(level.first_error, "HTTP 500: first");
    EXPECT_DOUBLE_EQ(*level.ttfb_ms_p50, 200);
    EXPECT_DOUBLE_EQ(*level.ttfb_ms_p95, 290);
    EXPECT_DOUBLE_EQ(*level.ttfb_ms_max, 300);
    EXPECT_DOUBLE_EQ(*level.stream_tokens_per_second_mean, 40);
    EXPECT_EQ(level.generated_tokens_total, 500);
    EXPECT_DOUBLE_EQ(level.aggregate_tokens_per_second, 250);
    EXPECT_DOUBLE_EQ(*level.prompt_tokens_mean, 500);

    const ServerLevelResult all_failed = summarize_level(1, {failed_a}, 1.0);
    EXPECT_FALSE(all_failed.ttfb_ms_p50);
    EXPECT_FALSE(all_failed.stream_tokens_per_second_mean);
    EXPECT_EQ(all_failed.aggregate_tokens_per_second, 0);
}

TEST(ServerBench, PromptsHaveTheWordCountAndDifferFromTheFirstWords) {
    const std::string prompt = make_prompt(500, 1);
    std::istringstream words(prompt);
    std::vector<std::string> list{std::istream_iterator<std::string>(words),
                                  std::istream_iterator<std::string>()};
    EXPECT_EQ(list.size(), 500u);
    EXPECT_EQ(make_prompt(500, 1), prompt);
    std::set<std::string> openings;
    for (uint64_t seed = 0; seed < 64; ++seed) openings.insert(make_prompt(4, seed));
    EXPECT_EQ(openings.size(), 64u);  // no two share their first four words: no common prefix to cache
}

TEST(ServerBench, RequestsPerLevelDefaultToTwiceTheConcurrencyAtLeastFour) {
    ServerBenchRun run;
    EXPECT_EQ(requests_for_level(run, 1), 4);
    EXPECT_EQ(requests_for_level(run, 2), 4);
    EXPECT_EQ(requests_for_level(run, 16), 32);
    run.requests_per_level = 10;
    EXPECT_EQ(requests_for_level(run, 16), 10);
}

TEST(ServerBench, ServerUrls) {
    const ServerAddress a = parse_server_url("http://localhost:11434");
    EXPECT_EQ(a.host, "localhost");
    EXPECT_EQ(a.port, 11434);
    EXPECT_EQ(a.base_path, "");
    EXPECT_EQ(a.url(), "http://localhost:11434");
    const ServerAddress b = parse_server_url("127.0.0.1:8080/proxy/llm/");
    EXPECT_EQ(b.port, 8080);
    EXPECT_EQ(b.base_path, "/proxy/llm");
    EXPECT_EQ(parse_server_url("http://example.org").port, 80);
    const ServerAddress v6 = parse_server_url("http://[::1]:8080/");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.url(), "http://[::1]:8080");
    for (const char* bad :
         {"https://localhost:11434", "ftp://x", "http://:80", "http://x:0", "http://x:65536", "http://x:80a",
          "http://x:", "http://[::1", "http://x/?q=1", "http://user@x"}) {
        EXPECT_THROW(parse_server_url(bad), Error) << bad;
    }
    try {
        parse_server_url("https://localhost:11434");
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("https is not supported"), std::string::npos) << e.what();
    }
}

ServerBenchReport sample_report() {
    ServerBenchReport report;
    report.hearth_version = "9.9.9";
    report.started_utc = "2026-11-26T06:00:00Z";
    report.url = "http://localhost:11434";
    report.model = "llama3.2:1b";
    report.model_from_server = true;
    report.prompt_tokens = 500;
    report.generate_tokens = 200;
    report.timeout_seconds = 300;
    RequestOutcome failed;
    failed.error = "HTTP 500: out of \"memory\", sorry";
    report.levels.push_back(summarize_level(1, {ok_request(100, 200, 50), ok_request(120, 200, 48)}, 8.0));
    report.levels.push_back(
        summarize_level(4, {ok_request(150, 200, 40), failed, ok_request(170, 200, 38)}, 5.0));
    return report;
}

// The documented schema (docs/bench-json.md, hearth-bench-server/1).
TEST(ServerBenchReport, JsonCarriesEveryFieldOfTheSchema) {
    const ServerBenchReport report = sample_report();
    EXPECT_EQ(format_server_preamble(report, BenchFormat::Json), "");
    EXPECT_EQ(format_server_level(report, report.levels[0], BenchFormat::Json), "");
    const auto j = nlohmann::json::parse(format_server_ending(report, BenchFormat::Json));
    EXPECT_EQ(j["schema"], "hearth-bench-server/1");
    EXPECT_EQ(j["hearth_version"], "9.9.9");
    EXPECT_EQ(j["server"]["url"], "http://localhost:11434");
    EXPECT_EQ(j["server"]["api"], "ollama");
    EXPECT_EQ(j["server"]["model"], "llama3.2:1b");
    EXPECT_EQ(j["server"]["model_from_server"], true);
    EXPECT_EQ(j["prompt_tokens_requested"], 500);
    EXPECT_EQ(j["generate_tokens_requested"], 200);
    EXPECT_EQ(j["warmup"], true);
    EXPECT_TRUE(j["warmup_error"].is_null());
    ASSERT_EQ(j["levels"].size(), 2u);
    const auto& one = j["levels"][0];
    EXPECT_EQ(one["concurrency"], 1);
    EXPECT_TRUE(one["first_error"].is_null());
    EXPECT_DOUBLE_EQ(one["ttfb_ms_p50"].get<double>(), 110);
    EXPECT_DOUBLE_EQ(one["aggregate_tokens_per_second"].get<double>(), 50);
    EXPECT_DOUBLE_EQ(one["stream_tokens_per_second_mean"].get<double>(), 49);
    const auto& four = j["levels"][1];
    EXPECT_EQ(four["requests"], 3);
    EXPECT_EQ(four["requests_ok"], 2);
    EXPECT_EQ(four["requests_failed"], 1);
    EXPECT_EQ(four["first_error"], "HTTP 500: out of \"memory\", sorry");
    EXPECT_EQ(four["generated_tokens_total"], 400);
    EXPECT_DOUBLE_EQ(four["wall_seconds"].get<double>(), 5);
    ASSERT_EQ(four["samples"].size(), 3u);
    EXPECT_EQ(four["samples"][1]["ok"], false);
    EXPECT_TRUE(four["samples"][1]["ttfb_ms"].is_null());
    EXPECT_EQ(four["samples"][2]["generated_tokens"], 200);
    EXPECT_EQ(four["samples"][2]["prompt_tokens_server"], 500);
    for (const char* key :
         {"ttfb_ms_p95", "ttfb_ms_max", "generated_tokens_mean", "prompt_tokens_server_mean"})
        EXPECT_TRUE(four.contains(key)) << key;
}

TEST(ServerBenchReport, ErrorsThatAreNotUtf8StillMakeValidJson) {
    ServerBenchReport report = sample_report();
    report.levels[1].first_error = "HTTP 500: \xff\xfe";
    const auto j = nlohmann::json::parse(format_server_ending(report, BenchFormat::Json));
    EXPECT_EQ(j["levels"][1]["first_error"], "HTTP 500: \xef\xbf\xbd\xef\xbf\xbd");
}

TEST(ServerBenchReport, CsvTableAndFailureNotes) {
    const ServerBenchReport report = sample_report();
    const std::string header = format_server_preamble(report, BenchFormat::Csv);
    const std::string line = format_server_level(report, report.levels[1], BenchFormat::Csv);
    const auto field_count = hearth::testing::csv_field_count;
    EXPECT_EQ(field_count(line), field_count(header));
    EXPECT_NE(line.find(",ollama,llama3.2:1b,500,200,4,3,2,1,5,160,169,170,39,80,400,200,500,"),
              std::string::npos)
        << line;
    EXPECT_NE(line.find(",\"HTTP 500: out of \"\"memory\"\", sorry\"\n"), std::string::npos) << line;
    EXPECT_EQ(format_server_level(report, report.levels[0], BenchFormat::Table),
              "| 1 | 2 | 0 | 110.0 | 119.0 | 120.0 | 49.00 | 50.00 | 200.0 | 500.0 | 8.00 |\n");
    EXPECT_EQ(format_server_ending(report, BenchFormat::Table),
              "\nconcurrency 4: 1 of 3 requests failed; the first: HTTP 500: out of \"memory\", sorry\n");
    EXPECT_NE(
        format_server_preamble(report, BenchFormat::Table).find("model llama3.2:1b (the first it lists)"),
        std::string::npos);
}

TEST(ServerBenchReport, PlotDrawsAggregateAndPerStreamAgainstConcurrency) {
    const std::string svg = plot_server_svg(sample_report());
    EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
    size_t lines = 0;
    for (size_t at = svg.find("<polyline class=\"series\""); at != std::string::npos;
         at = svg.find("<polyline class=\"series\"", at + 1))
        ++lines;
    EXPECT_EQ(lines, 2u);
    EXPECT_NE(svg.find("concurrent requests"), std::string::npos);
    EXPECT_NE(svg.find("aggregate tok/s"), std::string::npos);
}

}  // namespace
}  // namespace hearth::measure
