// hearth quantize: llama-quantize's arguments and mixing rules.
#include <cstdio>
#include <string>

#include "cli/cli.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/parallel.h"
#include "common/strings.h"
#include "model/quantize_model.h"

namespace hearth::cli {
namespace {

struct QuantizeArgs {
    std::string input;
    std::string output;
    std::string type;
    int threads = default_thread_count();
    bool allow_requantize = false;
    bool pure = false;
    bool leave_output_tensor = false;
    std::string output_tensor_type;
    std::string token_embedding_type;
    bool verbose = false;
};

std::string list_of_mixes() {
    std::string text;
    for (const quant::MixInfo& mix : quant::all_mixes()) {
        text += fmt::format("  {:<8} {}\n", mix.name, mix.description);
    }
    return text;
}

std::optional<quant::Type> parse_tensor_type(const std::string& name, const char* flag) {
    if (name.empty()) return std::nullopt;
    const auto type = quant::type_from_name(name);
    if (!type) fail("quantize: {} '{}' is not a tensor type (e.g. q8_0, q6_K, f16)", flag, name);
    return type;
}

void quantize(const QuantizeArgs& args) {
    model::QuantizeOptions options;
    options.mix = quant::find_mix(args.type);
    if (!options.mix) fail("quantize: unknown type '{}'. Choose one of:\n{}", args.type, list_of_mixes());
    options.threads = args.threads;
    options.allow_requantize = args.allow_requantize;
    options.mix_options.pure = args.pure;
    options.mix_options.quantize_output = !args.leave_output_tensor;
    options.mix_options.output_type = parse_tensor_type(args.output_tensor_type, "--output-tensor-type");
    options.mix_options.embedding_type = parse_tensor_type(args.token_embedding_type, "--token-embedding-type");

    std::fprintf(stderr, "quantizing %s to %s (%s) with %d threads\n", args.input.c_str(), args.output.c_str(),
                 std::string(options.mix->name).c_str(), args.threads);
    ProgressBar bar("quantize");
    auto log = [&](int64_t index, int64_t count, const std::string& name, std::string_view from, std::string_view to) {
        if (args.verbose) {
            std::fprintf(stderr, "[%4lld/%4lld] %-32s %6s -> %s\n", static_cast<long long>(index + 1),
                         static_cast<long long>(count), name.c_str(), std::string(from).c_str(), std::string(to).c_str());
        }
    };
    const model::QuantizeReport report = model::quantize_model(
        args.input, args.output, options, log, [&](uint64_t done, uint64_t total) { bar.update(done, total); });
    bar.finish();
    std::fprintf(stderr, "%lld tensors: %s -> %s (%.1f%%)%s\n", static_cast<long long>(report.tensor_count),
                 format_bytes(report.input_tensor_bytes).c_str(), format_bytes(report.output_tensor_bytes).c_str(),
                 100.0 * report.output_tensor_bytes / std::max<uint64_t>(report.input_tensor_bytes, 1),
                 report.fallback_count
                     ? fmt::format(", {} tensors fell back to a smaller-block type", report.fallback_count).c_str()
                     : "");
}

}  // namespace

void add_quantize(CLI::App& app) {
    auto args = std::make_shared<QuantizeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "quantize", "Quantize a GGUF model (llama-quantize's arguments, type names and per-tensor mixing rules).");
    cmd->add_option("input", args->input, "Input GGUF (F32/F16/BF16; quantized only with --allow-requantize)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("output", args->output, "Output GGUF (written atomically; never the input)")->required();
    cmd->add_option("type", args->type, "Quantization mix, e.g. Q4_K_M")->required();
    cmd->add_option("-t,--threads", args->threads, "Threads")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_flag("--allow-requantize", args->allow_requantize, "Allow quantizing tensors that are already quantized");
    cmd->add_flag("--pure", args->pure, "Every quantizable tensor gets the mix's default type (no upgrades)");
    cmd->add_flag("--leave-output-tensor", args->leave_output_tensor, "Keep output.weight as it is");
    cmd->add_option("--output-tensor-type", args->output_tensor_type, "Type for output.weight, e.g. q8_0");
    cmd->add_option("--token-embedding-type", args->token_embedding_type, "Type for token_embd.weight, e.g. q8_0");
    cmd->add_flag("-v,--verbose", args->verbose, "Print each tensor's type change");
    cmd->footer("Types:\n" + list_of_mixes() +
                "\nExample:\n  hearth quantize llama-8b-f16.gguf llama-8b-q4_k_m.gguf Q4_K_M");
    cmd->callback([args] { quantize(*args); });
}

}  // namespace hearth::cli
