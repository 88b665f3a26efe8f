// Feeds arbitrary bytes to the streamed-answer parsers of `hearth bench --server` (Ollama NDJSON,
// OpenAI server-sent events). The first byte picks the API and how the rest is cut into pieces;
// the events must be the same as for the whole body at once (a server's chunks may fall
// anywhere), and every event then goes through the request tally as the bench would.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "measure/server_bench.h"
#include "measure/server_stream.h"

namespace {

using hearth::measure::StreamEvent;
using hearth::measure::StreamParser;

bool same(const StreamEvent& a, const StreamEvent& b) {
    return a.text == b.text && a.generated_tokens == b.generated_tokens &&
           a.prompt_tokens == b.prompt_tokens && a.done == b.done && a.error == b.error;
}

void append(std::vector<StreamEvent>& events, std::vector<StreamEvent> more) {
    for (StreamEvent& e : more) events.push_back(std::move(e));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const auto api = (data[0] & 1) ? hearth::measure::ServerApi::OpenAi : hearth::measure::ServerApi::Ollama;
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

    StreamParser whole_parser(api);
    std::vector<StreamEvent> whole = whole_parser.feed(body);
    append(whole, whole_parser.finish());

    StreamParser split_parser(api);
    std::vector<StreamEvent> split;
    uint32_t state = data[0] | 0x100u;
    for (size_t at = 0; at < body.size();) {
        state = state * 1103515245u + 12345u;
        const size_t piece = 1 + (state >> 16) % 17;
        append(split, split_parser.feed(body.substr(at, piece)));
        at += piece;
    }
    append(split, split_parser.finish());

    if (whole.size() != split.size()) __builtin_trap();
    hearth::measure::StreamTally tally;
    for (size_t i = 0; i < whole.size(); ++i) {
        if (!same(whole[i], split[i])) __builtin_trap();
        tally.add(whole[i], static_cast<double>(i) * 0.01);
    }
    const hearth::measure::RequestOutcome outcome = tally.outcome("");
    if (outcome.generated_tokens < 0) __builtin_trap();
    return 0;
}
