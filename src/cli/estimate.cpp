// hearth estimate: the memory a model will need, part by part and per device, from its metadata
// alone (no tensor data is read), and whether this machine has it free.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/kv_type.h"
#include "common/error.h"
#include "common/strings.h"
#include "gguf/gguf.h"
#include "model/hparams.h"
#include "quant/quant.h"
#include "runtime/memory.h"

namespace hearth::cli {
namespace {

struct EstimateArgs {
    std::string model;
    int64_t context_length = 4096;
    int parallel = 1;
    std::string kv_type = "f16";
    int64_t batch_size = 512;
    std::string backend = "cpu";
    int gpu_layers = -1;
    std::string output = "table";
};

void estimate(const EstimateArgs& args) {
    if (args.backend != "cpu" || args.gpu_layers > 0)
        fail("estimate: --backend {}{}: this build runs on the CPU only (the CUDA backend, and its estimate, are not "
             "there yet)",
             args.backend, args.gpu_layers > 0 ? fmt::format(" -ngl {}", args.gpu_layers) : "");
    if (args.output != "table" && args.output != "json") fail("estimate: -o {}: give table or json", args.output);
    const gguf::File file = gguf::File::open(args.model);
    const model::Hparams hparams = model::read_hparams(file);
    const int64_t context = args.context_length == 0 ? hparams.context_length : args.context_length;
    if (context < 1 || context > hparams.context_length)
        fail("estimate: context length {} is outside what the model was trained for (1 to {})", context,
             hparams.context_length);
    const int64_t batch = std::min(args.batch_size, context);
    const runtime::MemoryEstimate m =
        runtime::estimate_memory(file, hparams, context, parse_kv_type(args.kv_type, "estimate"), batch, args.parallel);
    const uint64_t free = runtime::available_memory_bytes();
    const bool fits = free == 0 || m.total() <= free;

    if (args.output == "json") {
        const nlohmann::ordered_json j{
            {"model", args.model},
            {"context_length", context},
            {"parallel", args.parallel},
            {"kv_type", args.kv_type},
            {"batch_size", batch},
            {"embedding_mapped_bytes", m.embedding_mapped},
            {"devices",
             {{{"device", "cpu"},
               {"weights_bytes", m.weights},
               {"kv_cache_bytes", m.kv_cache},
               {"compute_bytes", m.compute},
               {"runtime_bytes", m.runtime},
               {"total_bytes", m.total()},
               {"free_bytes", free},
               {"fits", fits}}}}};
        std::printf("%s\n", j.dump(2).c_str());
        return;
    }
    std::printf("%s: context %lld × %d sequence%s, KV cache %s, batch %lld\n\n", args.model.c_str(),
                static_cast<long long>(context), args.parallel, args.parallel == 1 ? "" : "s", args.kv_type.c_str(),
                static_cast<long long>(batch));
    std::printf("| device | weights | KV cache | compute | runtime | total | free | fits |\n");
    std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    std::printf("| CPU (RAM) | %s | %s | %s | %s | %s | %s | %s |\n", format_bytes(m.weights).c_str(),
                format_bytes(m.kv_cache).c_str(), format_bytes(m.compute).c_str(), format_bytes(m.runtime).c_str(),
                format_bytes(m.total()).c_str(), free ? format_bytes(free).c_str() : "unknown",
                fits ? "yes" : "no");
    if (m.embedding_mapped > 0)
        std::printf("\nThe token embedding table (%s) stays mapped from the file: only the rows of tokens in use are "
                    "read, and the kernel can drop them again, so it is not in the total.\n",
                    format_bytes(m.embedding_mapped).c_str());
    if (!fits)
        std::printf("\nIt does not fit: try a smaller context (-c), a q8_0 KV cache (--kv-type q8_0) or a smaller "
                    "quantization.\n");
}

}  // namespace

void add_estimate(CLI::App& app) {
    auto args = std::make_shared<EstimateArgs>();
    CLI::App* cmd = app.add_subcommand(
        "estimate", "How much memory a model needs (weights, KV cache, compute, runtime), before loading it");
    cmd->add_option("-m,--model", args->model, "GGUF model file (only its metadata is read)")->required();
    cmd->add_option("-c,--ctx-size", args->context_length, "Context length in tokens (0: the model's own)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--parallel", args->parallel, "Sequences served at once, each with its own KV cache")
        ->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--kv-type", args->kv_type, "KV cache type: f16 or q8_0 (also -ctk)")->capture_default_str();
    cmd->add_option("-b,--batch-size", args->batch_size, "Prompt tokens per forward pass")->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--backend", args->backend, "cpu (cuda: not yet)")->capture_default_str();
    cmd->add_option("--n-gpu-layers", args->gpu_layers, "Layers on the GPU (also -ngl; needs the CUDA backend)");
    cmd->add_option("-o,--output", args->output, "table or json")->capture_default_str();
    cmd->footer(
        "The KV cache is committed when the model loads, so the total is what a full context holds.\n\n"
        "Examples:\n"
        "  hearth estimate -m model.gguf                     at the default 4096-token context\n"
        "  hearth estimate -m model.gguf -c 0 --kv-type q8_0  the model's full context, 8-bit KV cache\n"
        "  hearth estimate -m model.gguf -c 8192 --parallel 4 -o json");
    cmd->callback([args] { estimate(*args); });
}

}  // namespace hearth::cli
