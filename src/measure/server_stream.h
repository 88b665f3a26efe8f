// The streamed answer of an LLM server, from bytes to what a benchmark needs: each piece of
// generated text, the server's own token counts, the end, and errors. Two wire formats:
//  ollama  POST /api/generate: NDJSON, one JSON object a line, {"response": "text", "done": false};
//          the last has "done": true with "eval_count" (generated tokens) and "prompt_eval_count";
//          a failure mid-stream is a line {"error": "message"}.
//  openai  POST /v1/completions: server-sent events; an event's "data:" lines end at a blank line.
//          Data is a JSON chunk whose choices[0].text carries text and whose "usage" (the last
//          chunk, with stream_options.include_usage) has completion_tokens and prompt_tokens;
//          "data: [DONE]" ends the stream; {"error": {...}} reports a failure (so do llama-server's
//          older "error:" lines).
// Bytes may be split anywhere (inside a line, a UTF-8 sequence or a CRLF): the parser keeps the
// unfinished line until the rest comes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::measure {

enum class ServerApi { Ollama, OpenAi };

// nullopt for a name that is not ollama or openai.
std::optional<ServerApi> parse_server_api(std::string_view name);
std::string_view server_api_name(ServerApi api);

struct StreamEvent {
    std::string text;                         // generated text this event carries; may be empty
    std::optional<int64_t> generated_tokens;  // the server's count, where this event reports it
    std::optional<int64_t> prompt_tokens;     // the server's count of the prompt's tokens
    bool done = false;                        // the server says the answer is complete
    std::string error;                        // the server's error, or what was wrong with the line
};

// The message of a JSON error body as servers send them: {"error": "text"} (Ollama) or
// {"error": {"message": "text", ...}} (OpenAI); nullopt when the body is not one.
std::optional<std::string> json_error_message(std::string_view body);

class StreamParser {
  public:
    // A line longer than this is an error, so a server that never sends a newline cannot fill
    // the memory.
    static constexpr size_t kMaxLineBytes = 1 << 20;

    explicit StreamParser(ServerApi api) : api_(api) {}

    // The events these bytes complete, in order.
    std::vector<StreamEvent> feed(std::string_view bytes);
    // At the end of the body: an unterminated last line (or SSE event) still counts.
    std::vector<StreamEvent> finish();

  private:
    void take_line(std::string_view line, std::vector<StreamEvent>& events);
    void take_ndjson_line(std::string_view line, std::vector<StreamEvent>& events);
    void take_sse_line(std::string_view line, std::vector<StreamEvent>& events);
    void dispatch_sse_event(std::vector<StreamEvent>& events);

    ServerApi api_;
    std::string partial_line_;
    std::string event_data_;  // SSE: the current event's data lines, joined by '\n'
    bool has_event_data_ = false;
    bool line_too_long_ = false;
};

}  // namespace hearth::measure
