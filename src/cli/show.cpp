// hearth show: the facts of a GGUF file that Ollama's `show` and llama.cpp's load log print.
#include <cstdio>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/strings.h"
#include "gguf/gguf.h"
#include "quant/mix.h"

namespace hearth::cli {
namespace {

struct ShowArgs {
    std::string path;
    bool json = false;
};

nlohmann::ordered_json describe(const gguf::File& file) {
    const std::string arch = file.find_string("general.architecture").value_or("unknown");
    const std::string prefix = arch + ".";
    auto number = [&](const std::string& key) -> nlohmann::json {
        if (auto v = file.find_int(prefix + key)) return *v;
        return nullptr;
    };

    int64_t parameters = 0;
    uint64_t tensor_bytes = 0;
    std::map<std::string, int64_t> type_counts;
    for (const gguf::TensorInfo& t : file.tensors()) {
        parameters += t.element_count();
        tensor_bytes += t.size_bytes;
        ++type_counts[std::string(quant::type_name(t.type))];
    }

    nlohmann::ordered_json out;
    out["file"] = file.name();
    out["gguf_version"] = file.version();
    out["file_size"] = file.file_size();
    out["architecture"] = arch;
    out["name"] = file.find_string("general.name").value_or("");
    out["parameters"] = parameters;
    const auto file_type = file.find_int("general.file_type");
    const auto type_name = file_type ? quant::file_type_name(static_cast<uint32_t>(*file_type)) : std::nullopt;
    out["file_type"] = type_name ? nlohmann::json(std::string(*type_name))
                                 : (file_type ? nlohmann::json(*file_type) : nlohmann::json(nullptr));
    out["bits_per_weight"] = parameters > 0 ? 8.0 * static_cast<double>(tensor_bytes) / parameters : 0.0;
    out["context_length"] = number("context_length");
    out["embedding_length"] = number("embedding_length");
    out["block_count"] = number("block_count");
    out["feed_forward_length"] = number("feed_forward_length");
    out["head_count"] = number("attention.head_count");
    out["head_count_kv"] = number("attention.head_count_kv");
    out["rope"] = {
        {"freq_base", file.find_float(prefix + "rope.freq_base").value_or(10000.0)},
        {"dimension_count", number("rope.dimension_count")},
        {"scaling", file.find_tensor("rope_freqs.weight") ? "llama3 (rope_freqs.weight)"
                                                          : file.find_string(prefix + "rope.scaling.type").value_or("none")},
    };
    const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
    out["tokenizer"] = {
        {"model", file.find_string("tokenizer.ggml.model").value_or("none")},
        {"pre", file.find_string("tokenizer.ggml.pre").value_or("default")},
        {"tokens", tokens && tokens->as_array() ? tokens->as_array()->items.size() : 0},
        {"bos_token_id", file.find_int("tokenizer.ggml.bos_token_id").value_or(-1)},
        {"eos_token_id", file.find_int("tokenizer.ggml.eos_token_id").value_or(-1)},
    };
    out["chat_template"] = file.find("tokenizer.chat_template") != nullptr;
    out["tensor_count"] = file.tensors().size();
    out["tensor_bytes"] = tensor_bytes;
    out["tensor_types"] = type_counts;
    return out;
}

std::string text_of(const nlohmann::json& v) {
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
}

void print_table(const nlohmann::ordered_json& d) {
    auto row = [](const char* label, const std::string& value) { std::printf("  %-22s %s\n", label, value.c_str()); };
    std::printf("Model\n");
    row("architecture", text_of(d["architecture"]));
    if (!d["name"].get<std::string>().empty()) row("name", text_of(d["name"]));
    row("parameters", fmt::format("{:.2f} B ({})", d["parameters"].get<int64_t>() / 1e9, d["parameters"].get<int64_t>()));
    row("quantization", text_of(d["file_type"]));
    row("bits per weight", fmt::format("{:.2f}", d["bits_per_weight"].get<double>()));
    row("context length", text_of(d["context_length"]));
    row("embedding length", text_of(d["embedding_length"]));
    row("layers", text_of(d["block_count"]));
    row("feed forward length", text_of(d["feed_forward_length"]));
    row("heads (kv)", fmt::format("{} ({})", text_of(d["head_count"]), text_of(d["head_count_kv"])));
    std::printf("RoPE\n");
    row("freq base", fmt::format("{:g}", d["rope"]["freq_base"].get<double>()));
    row("dimensions", text_of(d["rope"]["dimension_count"]));
    row("scaling", text_of(d["rope"]["scaling"]));
    std::printf("Tokenizer\n");
    row("model", fmt::format("{} ({})", text_of(d["tokenizer"]["model"]), text_of(d["tokenizer"]["pre"])));
    row("tokens", text_of(d["tokenizer"]["tokens"]));
    row("bos / eos", fmt::format("{} / {}", text_of(d["tokenizer"]["bos_token_id"]), text_of(d["tokenizer"]["eos_token_id"])));
    row("chat template", d["chat_template"].get<bool>() ? "yes" : "no");
    std::printf("File\n");
    row("path", text_of(d["file"]));
    row("GGUF version", text_of(d["gguf_version"]));
    row("size", format_bytes(d["file_size"].get<double>()));
    row("tensors", text_of(d["tensor_count"]));
    for (const auto& [type, count] : d["tensor_types"].items()) {
        row(("  " + type).c_str(), fmt::format("{} tensors", count.get<int64_t>()));
    }
}

}  // namespace

void add_show(CLI::App& app) {
    auto args = std::make_shared<ShowArgs>();
    CLI::App* cmd = app.add_subcommand(
        "show", "Show what a GGUF model is: architecture, size, quantization, context, RoPE, tokenizer, tensor types.");
    cmd->add_option("model", args->path, "GGUF file")->required();
    cmd->add_flag("--json", args->json, "Print one JSON object instead of a table");
    cmd->callback([args] {
        const gguf::File file = gguf::File::open(args->path);
        const nlohmann::ordered_json description = describe(file);
        if (args->json) {
            std::printf("%s\n", description.dump(2).c_str());
        } else {
            print_table(description);
        }
    });
}

}  // namespace hearth::cli
