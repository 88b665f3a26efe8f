#include "measure/server_bench.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/version.h"
#include "measure/bench_report.h"
#include "measure/statistics.h"

namespace hearth::measure {

std::string ServerAddress::url() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    return fmt::format("http://{}{}{}:{}{}", ipv6 ? "[" : "", host, ipv6 ? "]" : "", port, base_path);
}

ServerAddress parse_server_url(std::string_view url) {
    std::string_view rest = url;
    if (rest.starts_with("https://"))
        fail("--server {}: https is not supported; hearth bench speaks plain http, as local servers (hearth, "
             "Ollama, llama-server) do: give http://",
             url);
    if (rest.starts_with("http://")) {
        rest.remove_prefix(7);
    } else if (rest.find("://") != std::string_view::npos) {
        fail("--server {}: give an http:// URL", url);
    }
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    while (path.ends_with('/')) path.remove_suffix(1);

    ServerAddress address;
    std::string_view port;
    if (authority.starts_with('[')) {  // [IPv6]:port
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) fail("--server {}: '[' without ']' around an IPv6 address", url);
        address.host = std::string(authority.substr(1, close - 1));
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(':')) fail("--server {}: expected ':port' after ']'", url);
        if (!after.empty()) port = after.substr(1);
    } else {
        const size_t colon = authority.find(':');
        address.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (address.host.empty()) fail("--server {}: no host name", url);
    if (address.host.find_first_of("@?# ") != std::string::npos)
        fail("--server {}: '{}' is not a host name", url, address.host);
    if (!port.empty() || authority.ends_with(':')) {
        int value = 0;
        const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (error != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535)
            fail("--server {}: '{}' is not a port number (1 to 65535)", url, port);
        address.port = value;
    }
    if (path.find_first_of("?#") != std::string_view::npos)
        fail("--server {}: give the server's address without a query", url);
    address.base_path = std::string(path);
    return address;
}

int requests_for_level(const ServerBenchRun& run, int concurrency) {
    constexpr int kMinimumRequests = 4;  // so that p50 and p95 are not a single request's time
    return run.requests_per_level > 0 ? run.requests_per_level : std::max(kMinimumRequests, 2 * concurrency);
}

void StreamTally::add(const StreamEvent& event, double seconds) {
    if (!event.error.empty()) {
        if (first_error_.empty()) first_error_ = event.error;
        return;
    }
    if (!event.text.empty()) {
        if (!first_text_seconds_) first_text_seconds_ = seconds;
        last_text_seconds_ = seconds;
        ++text_chunks_;
    }
    if (event.generated_tokens) server_generated_tokens_ = event.generated_tokens;
    if (event.prompt_tokens) server_prompt_tokens_ = event.prompt_tokens;
    if (event.done) done_ = true;
}

RequestOutcome StreamTally::outcome(const std::string& transport_error) const {
    RequestOutcome outcome;
    if (!first_error_.empty()) {
        outcome.error = first_error_;
    } else if (!transport_error.empty()) {
        outcome.error = transport_error;
    } else if (!done_) {
        outcome.error = "the stream ended before the server's last message (\"done\": true, or data: [DONE])";
    }
    outcome.generated_tokens = server_generated_tokens_.value_or(text_chunks_);
    outcome.prompt_tokens = server_prompt_tokens_;
    if (first_text_seconds_) outcome.ttfb_ms = *first_text_seconds_ * 1000;
    if (outcome.generated_tokens >= 2 && first_text_seconds_ && last_text_seconds_ > *first_text_seconds_)
        outcome.stream_tokens_per_second =
            static_cast<double>(outcome.generated_tokens - 1) / (last_text_seconds_ - *first_text_seconds_);
    return outcome;
}

double percentile(std::vector<double> values, double p) {
    if (values.empty()) fail("percentile of no values");
    std::sort(values.begin(), values.end());
    return sorted_percentile<double>(values, p);
}

namespace {

std::optional<double> mean_of(const std::vector<double>& values) {
    if (values.empty()) return std::nullopt;
    double sum = 0;
    for (const double v : values) sum += v;
    return sum / static_cast<double>(values.size());
}

}  // namespace

ServerLevelResult summarize_level(int concurrency, std::vector<RequestOutcome> requests,
                                  double wall_seconds) {
    ServerLevelResult level;
    level.concurrency = concurrency;
    level.wall_seconds = wall_seconds;
    std::vector<double> ttfb, stream_rates, generated, prompt;
    for (const RequestOutcome& r : requests) {
        if (!r.ok()) {
            ++level.requests_failed;
            if (level.first_error.empty()) level.first_error = r.error;
            continue;
        }
        ++level.requests_ok;
        level.generated_tokens_total += r.generated_tokens;
        generated.push_back(static_cast<double>(r.generated_tokens));
        if (r.ttfb_ms) ttfb.push_back(*r.ttfb_ms);
        if (r.stream_tokens_per_second) stream_rates.push_back(*r.stream_tokens_per_second);
        if (r.prompt_tokens) prompt.push_back(static_cast<double>(*r.prompt_tokens));
    }
    if (!ttfb.empty()) {
        level.ttfb_ms_p50 = percentile(ttfb, 0.50);
        level.ttfb_ms_p95 = percentile(ttfb, 0.95);
        level.ttfb_ms_max = *std::max_element(ttfb.begin(), ttfb.end());
    }
    level.stream_tokens_per_second_mean = mean_of(stream_rates);
    level.generated_tokens_mean = mean_of(generated);
    level.prompt_tokens_mean = mean_of(prompt);
    level.aggregate_tokens_per_second =
        wall_seconds > 0 ? static_cast<double>(level.generated_tokens_total) / wall_seconds : 0;
    level.requests = std::move(requests);
    return level;
}

namespace {

// Common English words that Llama 3's tokenizer makes one token each after a space (checked
// with `hearth tokenize`), so a prompt of N words is about N tokens.
constexpr std::string_view kPromptWords[] = {
    "the",      "of",          "and",       "to",       "in",         "is",         "that",      "for",
    "it",       "as",          "was",       "with",     "be",         "by",         "on",        "not",
    "he",       "this",        "are",       "or",       "his",        "from",       "at",        "which",
    "but",      "have",        "an",        "they",     "you",        "were",       "her",       "she",
    "there",    "been",        "one",       "all",      "we",         "their",      "has",       "would",
    "when",     "if",          "so",        "no",       "will",       "can",        "more",      "other",
    "time",     "people",      "year",      "day",      "way",        "man",        "thing",     "woman",
    "life",     "child",       "world",     "school",   "state",      "family",     "student",   "group",
    "country",  "problem",     "hand",      "part",     "place",      "case",       "week",      "company",
    "system",   "program",     "question",  "work",     "government", "number",     "night",     "point",
    "home",     "water",       "room",      "mother",   "area",       "money",      "story",     "fact",
    "month",    "lot",         "right",     "study",    "book",       "eye",        "job",       "word",
    "business", "issue",       "side",      "kind",     "head",       "house",      "service",   "friend",
    "father",   "power",       "hour",      "game",     "line",       "end",        "member",    "law",
    "car",      "city",        "community", "name",     "president",  "team",       "minute",    "idea",
    "body",     "information", "back",      "parent",   "face",       "others",     "level",     "office",
    "door",     "health",      "person",    "art",      "war",        "history",    "party",     "result",
    "change",   "morning",     "reason",    "research", "girl",       "guy",        "moment",    "air",
    "teacher",  "force",       "education", "good",     "new",        "first",      "last",      "long",
    "great",    "little",      "own",       "old",      "big",        "high",       "different", "small",
    "large",    "next",        "early",     "young",    "important",  "few",        "public",    "bad",
    "same",     "able",        "make",      "know",     "take",       "see",        "come",      "think",
    "look",     "want",        "give",      "use",      "find",       "tell",       "ask",       "seem",
    "feel",     "try",         "leave",     "call",     "keep",       "let",        "begin",     "show",
    "hear",     "play",        "run",       "move",     "live",       "believe",    "hold",      "bring",
    "happen",   "write",       "provide",   "sit",      "stand",      "lose",       "pay",       "meet",
    "include",  "continue",    "set",       "learn",    "lead",       "understand", "watch",     "follow",
    "stop",     "create",      "speak",     "read",     "allow",      "add",        "spend",     "grow",
    "open",     "walk",        "win",       "offer",    "remember",   "love",       "consider",  "appear",
    "buy",      "wait",        "serve",     "die",      "send",       "expect",     "build",     "stay",
    "fall",     "cut",         "reach",     "kill",     "remain",     "suggest",    "raise",     "pass",
    "sell",     "require",     "report",    "decide",   "pull"};

// SplitMix64: spreads consecutive request numbers into unrelated seeds.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

}  // namespace

std::string make_prompt(int words, uint64_t seed) {
    std::string prompt;
    uint64_t state = seed;
    for (int i = 0; i < words; ++i) {
        state = mix(state);
        // Modulo, not std::uniform_int_distribution, so every standard library makes the same prompts.
        if (i > 0) prompt += ' ';
        prompt += kPromptWords[state % std::size(kPromptWords)];
    }
    return prompt;
}

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr size_t kErrorBodyBytes = 4096;    // of a failed request's body, kept for its message
constexpr size_t kErrorMessageBytes = 300;  // of that body, shown when it is not a JSON error
constexpr int kWarmupTokensMax = 16;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

void configure(httplib::ClientImpl& client, double timeout_seconds) {
    const auto timeout = std::chrono::microseconds(static_cast<int64_t>(timeout_seconds * 1e6));
    client.set_connection_timeout(timeout);
    client.set_read_timeout(timeout);
    client.set_write_timeout(timeout);
    client.set_default_headers({{"User-Agent", fmt::format("hearth-bench/{}", kVersion)}});
}

std::string generate_path(const ServerAddress& address, ServerApi api) {
    return address.base_path + (api == ServerApi::Ollama ? "/api/generate" : "/v1/completions");
}

// Greedy, streaming, exactly `tokens` to generate where the server allows it. Ollama: raw, so the
// prompt is not wrapped in the chat template and its size is what was asked. OpenAI: llama-server
// and vLLM honour ignore_eos, so every request decodes the same number of tokens; Ollama and other
// servers ignore fields they do not know.
std::string request_body(const ServerBenchRun& run, const std::string& model, const std::string& prompt,
                         int tokens) {
    const uint64_t request_seed = run.seed & 0x7fffffff;  // servers read it as a 32-bit integer
    Json body;
    if (run.api == ServerApi::Ollama) {
        body = {{"model", model},
                {"prompt", prompt},
                {"stream", true},
                {"raw", true},
                {"options", {{"num_predict", tokens}, {"temperature", 0}, {"seed", request_seed}}}};
    } else {
        body = {{"model", model},
                {"prompt", prompt},
                {"max_tokens", tokens},
                {"stream", true},
                {"stream_options", {{"include_usage", true}}},
                {"temperature", 0},
                {"seed", request_seed},
                {"ignore_eos", true}};
    }
    return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A failed request's body as a message: the server's JSON error, else the start of the body.
std::string http_error(int status, const std::string& body) {
    if (const auto message = json_error_message(body)) return fmt::format("HTTP {}: {}", status, *message);
    std::string shown = body.substr(0, kErrorMessageBytes);
    std::replace_if(
        shown.begin(), shown.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }, ' ');
    return shown.empty() ? fmt::format("HTTP {}", status) : fmt::format("HTTP {}: {}", status, shown);
}

std::string transport_error(httplib::Error error, uint64_t bytes) {
    switch (error) {
        case httplib::Error::Connection:
            return "cannot connect (refused, or no route to the host)";
        case httplib::Error::ConnectionTimeout:
            return "timed out connecting";
        case httplib::Error::Read:
            return bytes > 0 ? fmt::format("the connection broke after {} bytes of the answer", bytes)
                             : "the server closed the connection without an answer";
        case httplib::Error::Write:
            return "could not send the request (the server closed the connection)";
        default:
            return httplib::to_string(error);
    }
}

// One streaming request, start to end; every failure becomes the outcome's error.
RequestOutcome stream_generation(httplib::ClientImpl& client, const std::string& path,
                                 const std::string& body, ServerApi api, double timeout_seconds) {
    StreamParser parser(api);
    StreamTally tally;
    int status = 0;
    std::string error_body;
    uint64_t bytes = 0;
    bool timed_out = false;

    httplib::Request request;
    request.method = "POST";
    request.path = path;
    request.body = body;
    request.headers = {{"Content-Type", "application/json"},
                       {"Accept", api == ServerApi::Ollama ? "application/x-ndjson" : "text/event-stream"}};
    const Clock::time_point sent = Clock::now();
    request.response_handler = [&](const httplib::Response& response) {
        status = response.status;
        return true;
    };
    request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
        const double now = seconds_since(sent);
        bytes += size;
        if (status != 200) {
            if (error_body.size() < kErrorBodyBytes)
                error_body.append(data, std::min(size, kErrorBodyBytes - error_body.size()));
            return true;
        }
        for (const StreamEvent& event : parser.feed({data, size})) tally.add(event, now);
        if (tally.has_error()) return false;  // the request has failed; stop reading
        if (now > timeout_seconds) {
            timed_out = true;
            return false;
        }
        return true;
    };
    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    const bool answered = client.send(request, response, error);
    const double elapsed = seconds_since(sent);
    if (status != 0 && status != 200) {
        RequestOutcome outcome;
        outcome.error = http_error(status, error_body.empty() ? response.body : error_body);
        return outcome;
    }
    std::string problem;
    if (timed_out || (!answered && error != httplib::Error::Canceled && elapsed >= timeout_seconds)) {
        problem = fmt::format("timed out after {:g} s ({} text chunks by then)", timeout_seconds,
                              tally.text_chunks());
    } else if (!answered && error != httplib::Error::Canceled) {
        problem = transport_error(error, bytes);
    } else {
        for (const StreamEvent& event : parser.finish()) tally.add(event, elapsed);
    }
    return tally.outcome(problem);
}

// The model to ask for: the one given, else the first the server lists. Either way this is the
// first contact, so an unreachable server is reported here, once.
std::string resolve_model(const ServerBenchRun& run, const ServerAddress& address) {
    httplib::ClientImpl client(address.host, address.port);
    configure(client, run.timeout_seconds);
    const bool ollama = run.api == ServerApi::Ollama;
    const std::string path = address.base_path + (ollama ? "/api/tags" : "/v1/models");
    const httplib::Result result = client.Get(path.c_str());
    if (!result)
        fail("cannot reach the server at {}: {}; is it running, on that port?", address.url(),
             transport_error(result.error(), 0));
    if (!run.model.empty()) return run.model;
    if (result->status != 200)
        fail("{}{}: {}; give the model with --model-name", address.url(), ollama ? "/api/tags" : "/v1/models",
             http_error(result->status, result->body));
    const Json list = Json::parse(result->body, nullptr, false);
    const char* array_key = ollama ? "models" : "data";
    const char* name_key = ollama ? "name" : "id";
    const std::string where = address.url() + path.substr(address.base_path.size());
    if (!list.is_object() || !list.contains(array_key) || !list[array_key].is_array())
        fail("{}: not a model list (no '{}' array); give the model with --model-name", where, array_key);
    for (const Json& entry : list[array_key])
        if (entry.is_object() && entry.contains(name_key) && entry[name_key].is_string())
            return entry[name_key].get<std::string>();
    fail("{}: the server lists no models; {} one, or give --model-name", where, ollama ? "pull" : "load");
}

ServerLevelResult run_level(const ServerBenchRun& run, const ServerAddress& address, const std::string& model,
                            int concurrency, uint64_t first_request_number,
                            const std::function<void()>& request_finished) {
    const int requests = requests_for_level(run, concurrency);
    std::vector<std::string> bodies;
    for (int i = 0; i < requests; ++i)
        bodies.push_back(request_body(
            run, model, make_prompt(run.prompt_tokens, mix(run.seed) ^ (first_request_number + i)),
            run.generate_tokens));
    const std::string path = generate_path(address, run.api);
    std::vector<RequestOutcome> outcomes(static_cast<size_t>(requests));
    std::atomic<int> next{0};
    const Clock::time_point start = Clock::now();
    {
        std::vector<std::jthread> clients;
        for (int c = 0; c < std::min(concurrency, requests); ++c) {
            clients.emplace_back([&] {
                httplib::ClientImpl client(address.host, address.port);
                configure(client, run.timeout_seconds);
                for (int i; (i = next++) < requests;) {
                    try {
                        outcomes[i] =
                            stream_generation(client, path, bodies[i], run.api, run.timeout_seconds);
                    } catch (
                        const std::exception& e) {  // a bug or no memory: one failed request, not a crash
                        outcomes[i].error = fmt::format("unexpected failure: {}", e.what());
                    }
                    request_finished();
                }
            });
        }
    }
    return summarize_level(concurrency, std::move(outcomes), seconds_since(start));
}

}  // namespace

ServerBenchReport run_server_bench(const ServerBenchRun& run, const ServerBenchCallbacks& callbacks) {
    const ServerAddress address = parse_server_url(run.url);
    if (run.concurrency.empty()) fail("bench: no concurrency levels");
    for (const int c : run.concurrency)
        if (c < 1) fail("bench: --concurrency {}: give 1 or more", c);
    if (run.prompt_tokens < 1 || run.generate_tokens < 1)
        fail("bench: give 1 or more prompt and generated tokens");
    if (!(run.timeout_seconds > 0)) fail("bench: --timeout must be more than 0 seconds");

    ServerBenchReport report;
    report.hearth_version = kVersion;
    report.started_utc = utc_timestamp_now();
    report.url = address.url();
    report.api = run.api;
    report.model = resolve_model(run, address);
    report.model_from_server = run.model.empty();
    report.prompt_tokens = run.prompt_tokens;
    report.generate_tokens = run.generate_tokens;
    report.timeout_seconds = run.timeout_seconds;
    report.warmup = run.warmup;
    report.seed = run.seed;

    uint64_t request_number = 0;
    if (run.warmup) {
        httplib::ClientImpl client(address.host, address.port);
        configure(client, run.timeout_seconds);
        const RequestOutcome warmup = stream_generation(
            client, generate_path(address, run.api),
            request_body(run, report.model, make_prompt(run.prompt_tokens, mix(run.seed) ^ request_number),
                         std::min(run.generate_tokens, kWarmupTokensMax)),
            run.api, run.timeout_seconds);
        // Refused outright (an unknown model, a wrong API), the run could only fail; a failure after
        // the answer began is the server's trouble with one generation, measured in the levels.
        if (!warmup.ok() && !warmup.ttfb_ms)
            fail("{}: the warm-up request for model '{}' failed: {}",
                 address.url() + generate_path({}, run.api), report.model, warmup.error);
        report.warmup_error = warmup.error;
    }
    ++request_number;
    if (callbacks.started) callbacks.started(report);

    int64_t total = 0, done = 0;
    for (const int c : run.concurrency) total += requests_for_level(run, c);
    std::mutex progress_mutex;
    const std::function<void()> request_finished = [&] {
        const std::lock_guard lock(progress_mutex);
        ++done;
        if (callbacks.progress) callbacks.progress(done, total);
    };
    for (const int c : run.concurrency) {
        report.levels.push_back(run_level(run, address, report.model, c, request_number, request_finished));
        request_number += static_cast<uint64_t>(requests_for_level(run, c));
        if (callbacks.finished_level) callbacks.finished_level(report, report.levels.back());
    }
    return report;
}

}  // namespace hearth::measure
