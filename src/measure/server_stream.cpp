#include "measure/server_stream.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace hearth::measure {

std::optional<ServerApi> parse_server_api(std::string_view name) {
    if (name == "ollama") return ServerApi::Ollama;
    if (name == "openai") return ServerApi::OpenAi;
    return std::nullopt;
}

std::string_view server_api_name(ServerApi api) {
    return api == ServerApi::Ollama ? "ollama" : "openai";
}

namespace {

using Json = nlohmann::json;

constexpr size_t kSnippetBytes = 80;

// The start of a line for an error message, control bytes shown as '?'.
std::string snippet(std::string_view line) {
    std::string shown(line.substr(0, kSnippetBytes));
    for (char& c : shown)
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
    return line.size() > kSnippetBytes ? shown + "…" : shown;
}

StreamEvent error_event(std::string message) {
    StreamEvent event;
    event.error = std::move(message);
    return event;
}

// A token count: absent, or a non-negative integer (a float or a string is a malformed stream).
bool read_count(const Json& object, const char* key, std::optional<int64_t>& count, std::string& error) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return true;
    if (it->is_number_unsigned() && it->get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) {
        count = static_cast<int64_t>(it->get<uint64_t>());
        return true;
    }
    if (it->is_number_integer() && it->get<int64_t>() >= 0) {
        count = it->get<int64_t>();
        return true;
    }
    error = fmt::format("'{}' is not a token count: {}", key, snippet(it->dump()));
    return false;
}

// A server's error value: {"error": "text"} (Ollama) or {"error": {"message": "text", ...}} (OpenAI).
std::string error_message(const Json& error) {
    if (error.is_string()) return error.get<std::string>();
    if (error.is_object()) {
        const auto message = error.find("message");
        if (message != error.end() && message->is_string()) return message->get<std::string>();
    }
    return error.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

std::optional<std::string> json_error_message(std::string_view body) {
    const Json json = Json::parse(body, nullptr, false);
    if (!json.is_object()) return std::nullopt;
    const auto error = json.find("error");
    if (error == json.end() || error->is_null()) return std::nullopt;
    return error_message(*error);
}

namespace {

bool blank(std::string_view line) {
    return line.find_first_not_of(" \t") == std::string_view::npos;
}

}  // namespace

std::vector<StreamEvent> StreamParser::feed(std::string_view bytes) {
    std::vector<StreamEvent> events;
    while (!bytes.empty()) {
        const size_t newline = bytes.find('\n');
        const std::string_view piece = bytes.substr(0, newline);
        if (!line_too_long_) {
            if (partial_line_.size() + piece.size() > kMaxLineBytes) {
                events.push_back(error_event(fmt::format("a line longer than {} bytes", kMaxLineBytes)));
                partial_line_.clear();
                line_too_long_ = true;
            } else {
                partial_line_.append(piece);
            }
        }
        if (newline == std::string_view::npos) break;
        if (line_too_long_) {
            line_too_long_ = false;  // the rest of it is skipped; the request has failed anyway
        } else {
            take_line(partial_line_, events);
        }
        partial_line_.clear();
        bytes.remove_prefix(newline + 1);
    }
    return events;
}

std::vector<StreamEvent> StreamParser::finish() {
    std::vector<StreamEvent> events;
    if (!line_too_long_ && !partial_line_.empty()) take_line(partial_line_, events);
    partial_line_.clear();
    line_too_long_ = false;
    if (api_ == ServerApi::OpenAi) dispatch_sse_event(events);
    return events;
}

void StreamParser::take_line(std::string_view line, std::vector<StreamEvent>& events) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (api_ == ServerApi::Ollama) {
        take_ndjson_line(line, events);
    } else {
        take_sse_line(line, events);
    }
}

void StreamParser::take_ndjson_line(std::string_view line, std::vector<StreamEvent>& events) {
    if (blank(line)) return;
    const Json object = Json::parse(line, nullptr, false);
    if (object.is_discarded() || !object.is_object()) {
        const char* hint = line.starts_with("data:") ? " (server-sent events: is it --api openai?)" : "";
        events.push_back(error_event(fmt::format("malformed NDJSON line{}: {}", hint, snippet(line))));
        return;
    }
    if (const auto error = object.find("error"); error != object.end() && !error->is_null()) {
        events.push_back(error_event(error_message(*error)));
        return;
    }
    StreamEvent event;
    if (const auto response = object.find("response"); response != object.end()) {
        if (!response->is_string()) {
            events.push_back(error_event(fmt::format("'response' is not a string: {}", snippet(line))));
            return;
        }
        event.text = response->get<std::string>();
    }
    if (const auto done = object.find("done"); done != object.end()) {
        if (!done->is_boolean()) {
            events.push_back(error_event(fmt::format("'done' is not true or false: {}", snippet(line))));
            return;
        }
        event.done = done->get<bool>();
    }
    if (!read_count(object, "eval_count", event.generated_tokens, event.error) ||
        !read_count(object, "prompt_eval_count", event.prompt_tokens, event.error)) {
        event.generated_tokens.reset();
        event.prompt_tokens.reset();
        event.done = false;
    }
    events.push_back(std::move(event));
}

void StreamParser::take_sse_line(std::string_view line, std::vector<StreamEvent>& events) {
    if (line.empty()) {
        dispatch_sse_event(events);
        return;
    }
    if (line.front() == ':') return;  // a comment; llama-server pings with ":"
    if (line.front() == '{') {
        events.push_back(error_event(
            fmt::format("not a server-sent event line (does the server stream? is it --api ollama?): {}",
                        snippet(line))));
        return;
    }
    // "field: value", one space after the colon dropped; a line without a colon is a field with no value.
    const size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
    if (field == "data") {
        if (has_event_data_) event_data_ += '\n';
        event_data_.append(value);
        has_event_data_ = true;
        if (event_data_.size() > kMaxLineBytes) {
            events.push_back(error_event(fmt::format("an event longer than {} bytes", kMaxLineBytes)));
            event_data_.clear();
            has_event_data_ = false;
        }
    } else if (field == "error") {
        events.push_back(error_event(std::string(value)));
    }
    // event:, id:, retry: and unknown fields carry nothing a benchmark needs.
}

void StreamParser::dispatch_sse_event(std::vector<StreamEvent>& events) {
    if (!has_event_data_) return;
    const std::string data = std::move(event_data_);
    event_data_.clear();
    has_event_data_ = false;
    if (data == "[DONE]") {
        StreamEvent event;
        event.done = true;
        events.push_back(std::move(event));
        return;
    }
    const Json object = Json::parse(data, nullptr, false);
    if (object.is_discarded() || !object.is_object()) {
        events.push_back(error_event(fmt::format("malformed server-sent event data: {}", snippet(data))));
        return;
    }
    if (const auto error = object.find("error"); error != object.end() && !error->is_null()) {
        events.push_back(error_event(error_message(*error)));
        return;
    }
    StreamEvent event;
    if (const auto choices = object.find("choices"); choices != object.end() && !choices->empty()) {
        const Json& first = choices->is_array() ? choices->front() : Json();
        const auto text = first.is_object() ? first.find("text") : first.end();
        if (!first.is_object() || (text != first.end() && !text->is_string() && !text->is_null())) {
            events.push_back(error_event(fmt::format("'choices' has no text: {}", snippet(data))));
            return;
        }
        if (text != first.end() && text->is_string()) event.text = text->get<std::string>();
    }
    if (const auto usage = object.find("usage"); usage != object.end() && usage->is_object()) {
        if (!read_count(*usage, "completion_tokens", event.generated_tokens, event.error) ||
            !read_count(*usage, "prompt_tokens", event.prompt_tokens, event.error)) {
            event.generated_tokens.reset();
            event.prompt_tokens.reset();
        }
    }
    events.push_back(std::move(event));
}

}  // namespace hearth::measure
