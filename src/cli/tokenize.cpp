// hearth tokenize / detokenize: the model's tokenizer (from its GGUF metadata) on the command line.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "common/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace hearth::cli {
namespace {

struct TokenizeArgs {
    std::string model;
    std::string text;
    std::string file;
    bool ids_only = false;
    bool json = false;
    bool no_bos = false;
    bool parse_special = false;
};

struct DetokenizeArgs {
    std::string model;
    std::vector<std::string> ids;
    bool skip_special = false;
};

tokenizer::Tokenizer load_tokenizer(const std::string& model) {
    const gguf::File file = gguf::File::open(model);
    return tokenizer::Tokenizer::from_gguf(file);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("tokenize: cannot open '{}'", path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail("tokenize: cannot read '{}'", path);
    return text;
}

// A piece for people: printable ASCII and whole UTF-8 characters as they are, other bytes
// (control bytes, part of a character split across tokens) as \xNN.
std::string escape_piece(std::string_view bytes) {
    std::string out;
    for (size_t pos = 0; pos < bytes.size();) {
        const char c = bytes[pos];
        const auto byte = static_cast<uint8_t>(c);
        const size_t length = tokenizer::utf8_sequence_length(bytes, pos);
        if (c == '\\' || c == '\'')
            out += fmt::format("\\{}", c);
        else if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (byte >= 0x20 && byte < 0x7F)
            out += c;
        else if (byte >= 0x80 && length > 0) {
            out.append(bytes.substr(pos, length));
            pos += length;
            continue;
        } else
            out += fmt::format("\\x{:02x}", byte);
        ++pos;
    }
    return out;
}

void tokenize(const TokenizeArgs& args) {
    const tokenizer::Tokenizer tok = load_tokenizer(args.model);
    const std::string text = args.file.empty() ? args.text : read_file(args.file);
    const std::vector<int32_t> ids =
        tok.encode(text, {.add_bos = !args.no_bos, .parse_special = args.parse_special});
    if (args.json) {
        nlohmann::json pieces = nlohmann::json::array();
        for (const int32_t id : ids) pieces.push_back(std::string(tok.token_bytes(id)));
        const nlohmann::json out = {{"ids", ids}, {"pieces", pieces}};
        // A piece may hold part of a UTF-8 character; JSON gets U+FFFD for it.
        std::puts(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else if (args.ids_only) {
        std::puts(fmt::format("[{}]", fmt::join(ids, ", ")).c_str());
    } else {
        for (const int32_t id : ids)
            std::puts(fmt::format("{:>7} -> '{}'", id, escape_piece(tok.token_bytes(id))).c_str());
    }
}

// Accepts "1 2 3", "1,2,3" and "[1, 2, 3]" (what tokenize --ids prints).
std::vector<int32_t> parse_ids(const std::vector<std::string>& words) {
    std::vector<int32_t> ids;
    for (const std::string& word : words) {
        std::string number;
        const auto flush = [&] {
            if (number.empty()) return;
            size_t used = 0;
            long long value = 0;
            try {
                value = std::stoll(number, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != number.size() || value < 0 || value > INT32_MAX)
                fail("detokenize: '{}' is not a token id", number);
            ids.push_back(static_cast<int32_t>(value));
            number.clear();
        };
        for (const char c : word) {
            if (c == '[' || c == ']' || c == ',' || c == ' ')
                flush();
            else
                number += c;
        }
        flush();
    }
    return ids;
}

void detokenize(const DetokenizeArgs& args) {
    const tokenizer::Tokenizer tok = load_tokenizer(args.model);
    const std::vector<int32_t> ids = parse_ids(args.ids);
    const std::string text = tok.decode(ids, {.render_special = !args.skip_special});
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
}

}  // namespace

void add_tokenize(CLI::App& app) {
    auto args = std::make_shared<TokenizeArgs>();
    CLI::App* cmd = app.add_subcommand("tokenize", "Text to token ids, with the model's own tokenizer");
    cmd->add_option("-m,--model", args->model, "GGUF model (only its tokenizer metadata is read)")
        ->required();
    auto* text = cmd->add_option("--text", args->text, "Text to tokenize");
    auto* file = cmd->add_option("--file", args->file, "File whose bytes to tokenize");
    text->excludes(file);
    file->excludes(text);
    cmd->add_flag("--ids", args->ids_only, "Print only the ids, as [1, 2, 3]");
    cmd->add_flag("--json", args->json, "Print {\"ids\": [...], \"pieces\": [...]}");
    cmd->add_flag("--no-bos", args->no_bos, "Do not prepend BOS even when the model's tokenizer asks for it");
    cmd->add_flag("--parse-special", args->parse_special,
                  "Turn special-token text such as <|eot_id|> into the special token (default: plain text)");
    cmd->footer("Example:\n  hearth tokenize -m llama.gguf --text 'Hello world' --ids");
    cmd->callback([args, text, file] {
        if (text->count() == 0 && file->count() == 0) fail("tokenize: give --text or --file");
        tokenize(*args);
    });
}

void add_detokenize(CLI::App& app) {
    auto args = std::make_shared<DetokenizeArgs>();
    CLI::App* cmd = app.add_subcommand("detokenize", "Token ids to text, with the model's own tokenizer");
    cmd->add_option("-m,--model", args->model, "GGUF model (only its tokenizer metadata is read)")
        ->required();
    cmd->add_option("ids", args->ids, "Token ids: 1 2 3, 1,2,3 or [1, 2, 3]")->required();
    cmd->add_flag("--skip-special", args->skip_special, "Leave control tokens such as <|eot_id|> out");
    cmd->footer("Example:\n  hearth detokenize -m llama.gguf 9906 1917");
    cmd->callback([args] { detokenize(*args); });
}

}  // namespace hearth::cli
