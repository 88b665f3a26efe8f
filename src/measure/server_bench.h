// `hearth bench --server`: load on a running LLM server (hearth, Ollama, llama-server) through
// its Ollama or OpenAI API, measured as its users feel it. For each concurrency level C, C
// clients keep C streaming requests in flight until the level's requests are done. Every request
// has its own prompt (fixed-seed random common words, so no prefix cache can make a later one
// free) and asks for a fixed number of greedy tokens. Per request: time to the first generated
// text, tokens generated, decode speed of its stream; per level: TTFB percentiles, mean
// per-stream and aggregate tok/s, failures (counted, never fatal).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "measure/server_stream.h"

namespace hearth::measure {

struct ServerAddress {
    std::string host;
    int port = 80;
    std::string base_path;  // "" or "/prefix", no trailing slash; the API paths go after it

    std::string url() const;  // "http://host:port/prefix"
};

// "http://host[:port][/prefix]", or "host:port" without a scheme. Throws hearth::Error for
// https:// (not supported: plain http to local servers) and for what is not such a URL.
ServerAddress parse_server_url(std::string_view url);

struct ServerBenchRun {
    std::string url;
    ServerApi api = ServerApi::Ollama;
    std::string model;  // the request's "model"; empty: the first model the server lists
    std::vector<int> concurrency{1, 4, 8, 16};
    int prompt_tokens = 500;       // prompt words, about one Llama 3 token each
    int generate_tokens = 200;     // num_predict / max_tokens
    int requests_per_level = 0;    // 0: 2 × concurrency, at least 4 (requests_for_level)
    double timeout_seconds = 300;  // per request, from sending it to the end of its stream
    bool warmup = true;            // one untimed request first (a server may load the model on it)
    uint64_t seed = 1;
};

int requests_for_level(const ServerBenchRun& run, int concurrency);

struct RequestOutcome {
    std::string error;                     // empty: the request succeeded
    std::optional<double> ttfb_ms;         // request sent → first chunk carrying text
    int64_t generated_tokens = 0;          // the server's count when it reports one, else text chunks
    std::optional<int64_t> prompt_tokens;  // the server's count of the prompt
    std::optional<double> stream_tokens_per_second;  // (tokens − 1) / (last text chunk − first)

    bool ok() const { return error.empty(); }
};

// What one request's stream adds up to. Times are seconds since the request was sent.
class StreamTally {
  public:
    void add(const StreamEvent& event, double seconds);
    // `transport_error`: what went wrong below the stream (connection, timeout); empty if the body
    // ended cleanly.
    RequestOutcome outcome(const std::string& transport_error) const;

    bool has_error() const { return !first_error_.empty(); }
    int64_t text_chunks() const { return text_chunks_; }

  private:
    std::optional<double> first_text_seconds_;
    double last_text_seconds_ = 0;
    int64_t text_chunks_ = 0;
    std::optional<int64_t> server_generated_tokens_;
    std::optional<int64_t> server_prompt_tokens_;
    bool done_ = false;
    std::string first_error_;
};

struct ServerLevelResult {
    int concurrency = 0;
    double wall_seconds = 0;               // the first request sent → the last one ended
    std::vector<RequestOutcome> requests;  // in the order they were sent
    int requests_ok = 0;
    int requests_failed = 0;
    std::string first_error;  // of the first failed request, in sending order
    // Over the successful requests that generated text; nullopt when there are none.
    std::optional<double> ttfb_ms_p50, ttfb_ms_p95, ttfb_ms_max;
    std::optional<double> stream_tokens_per_second_mean;
    std::optional<double> generated_tokens_mean;
    std::optional<double> prompt_tokens_mean;  // where the server reported it
    int64_t generated_tokens_total = 0;        // successful requests only
    double aggregate_tokens_per_second = 0;    // generated_tokens_total / wall_seconds
};

// The p-quantile, 0 <= p <= 1, interpolated linearly between the closest ranks (numpy's default,
// Hyndman & Fan type 7). Throws hearth::Error on no values.
double percentile(std::vector<double> values, double p);

ServerLevelResult summarize_level(int concurrency, std::vector<RequestOutcome> requests, double wall_seconds);

// `words` random common English words (each one Llama 3 token after a space), from `seed`.
std::string make_prompt(int words, uint64_t seed);

struct ServerBenchReport {
    std::string hearth_version;
    std::string started_utc;  // ISO 8601
    std::string url;
    ServerApi api = ServerApi::Ollama;
    std::string model;
    bool model_from_server = false;  // not given: the first the server listed
    int prompt_tokens = 0;
    int generate_tokens = 0;
    double timeout_seconds = 0;
    bool warmup = true;
    std::string warmup_error;  // the warm-up failed after the server began answering (else it threw)
    uint64_t seed = 1;
    std::vector<ServerLevelResult> levels;
};

struct ServerBenchCallbacks {
    std::function<void(const ServerBenchReport&)> started;  // server reached, model known, warmed up
    std::function<void(const ServerBenchReport&, const ServerLevelResult&)> finished_level;
    std::function<void(int64_t done, int64_t total)> progress;  // requests over all levels
};

// Throws hearth::Error when the server cannot be reached, names no model, or refuses the warm-up
// request (answers it with no text); failures after that are counted in the levels.
ServerBenchReport run_server_bench(const ServerBenchRun& run, const ServerBenchCallbacks& callbacks = {});

}  // namespace hearth::measure
