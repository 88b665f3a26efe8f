// hearth estimate: the memory a model will need, part by part and per device, from its metadata
// alone (no tensor data is read), and whether this machine has it free.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/backend_option.h"
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
    BackendArgs backend;
    std::string output = "table";
};

// One device's row: what it holds, and whether that fits what it has free (0: unknown).
struct DeviceRow {
    std::string device;  // "cpu", "cuda:0"
    std::string label;   // "CPU (RAM)", "NVIDIA H100 80GB HBM3 (VRAM)"
    runtime::MemoryEstimate need;
    uint64_t free = 0;
    bool fits() const { return free == 0 || need.total() <= free; }
};

std::vector<DeviceRow> device_rows(const EstimateArgs& args, const gguf::File& file, const model::Hparams& hparams,
                                   int64_t context, int64_t batch) {
    const quant::Type kv_type = parse_kv_type(args.kv_type, "estimate");
    const int64_t gpu_layers = args.backend.gpu_layers;
    runtime::BackendKind kind = gpu_layers == 0 ? runtime::BackendKind::Cpu : parse_backend(args.backend, "estimate");
    const std::optional<runtime::GpuMemory> gpu = runtime::gpu_memory(args.backend.device);
    // -ngl asks about a GPU, present or not.
    if (kind == runtime::BackendKind::Auto)
        kind = gpu || gpu_layers > 0 ? runtime::BackendKind::Cuda : runtime::BackendKind::Cpu;
    if (kind == runtime::BackendKind::Cpu) {
        return {{"cpu", "CPU (RAM)",
                 runtime::estimate_memory(file, hparams, context, kv_type, batch, args.parallel),
                 runtime::available_memory_bytes()}};
    }
    const bool split = gpu_layers > 0 && gpu_layers < hparams.layer_count;
    const runtime::CudaMemoryEstimate m =
        runtime::estimate_cuda_memory(file, hparams, context, kv_type, batch, args.parallel, split ? gpu_layers : -1);
    runtime::MemoryEstimate host;
    host.runtime = m.host_runtime;
    // Split: the CPU holds the other layers and the output layer, and the tokenizer as always.
    if (split) host = runtime::estimate_memory(file, hparams, context, kv_type, batch, args.parallel, gpu_layers);
    const std::string gpu_name = gpu ? gpu->name : "GPU " + std::to_string(args.backend.device) + ", not present";
    return {{"cuda:" + std::to_string(args.backend.device), gpu_name + " (VRAM)", m.device, gpu ? gpu->free_bytes : 0},
            {"cpu", "CPU (RAM)", host, runtime::available_memory_bytes()}};
}

void estimate(const EstimateArgs& args) {
    if (args.output != "table" && args.output != "json") fail("estimate: -o {}: give table or json", args.output);
    const gguf::File file = gguf::File::open(args.model);
    const model::Hparams hparams = model::read_hparams(file);
    const int64_t context = args.context_length == 0 ? hparams.context_length : args.context_length;
    if (context < 1 || context > hparams.context_length)
        fail("estimate: context length {} is outside what the model was trained for (1 to {})", context,
             hparams.context_length);
    const int64_t batch = std::min(args.batch_size, context);
    const std::vector<DeviceRow> rows = device_rows(args, file, hparams, context, batch);
    const uint64_t embedding_mapped = rows.front().need.embedding_mapped;
    bool fits = true;
    for (const DeviceRow& row : rows) fits = fits && row.fits();

    if (args.output == "json") {
        nlohmann::ordered_json devices = nlohmann::ordered_json::array();
        for (const DeviceRow& row : rows) {
            devices.push_back({{"device", row.device},
                               {"name", row.label},
                               {"weights_bytes", row.need.weights},
                               {"kv_cache_bytes", row.need.kv_cache},
                               {"compute_bytes", row.need.compute},
                               {"runtime_bytes", row.need.runtime},
                               {"total_bytes", row.need.total()},
                               {"free_bytes", row.free},
                               {"fits", row.fits()}});
        }
        const nlohmann::ordered_json j{{"model", args.model},
                                       {"context_length", context},
                                       {"parallel", args.parallel},
                                       {"kv_type", args.kv_type},
                                       {"batch_size", batch},
                                       {"embedding_mapped_bytes", embedding_mapped},
                                       {"devices", devices}};
        std::printf("%s\n", j.dump(2).c_str());
        return;
    }
    std::printf("%s: context %lld × %d sequence%s, KV cache %s, batch %lld\n\n", args.model.c_str(),
                static_cast<long long>(context), args.parallel, args.parallel == 1 ? "" : "s", args.kv_type.c_str(),
                static_cast<long long>(batch));
    std::printf("| device | weights | KV cache | compute | runtime | total | free | fits |\n");
    std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (const DeviceRow& row : rows) {
        const runtime::MemoryEstimate& m = row.need;
        std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", row.label.c_str(), format_bytes(m.weights).c_str(),
                    format_bytes(m.kv_cache).c_str(), format_bytes(m.compute).c_str(), format_bytes(m.runtime).c_str(),
                    format_bytes(m.total()).c_str(), row.free ? format_bytes(row.free).c_str() : "unknown",
                    row.fits() ? "yes" : "no");
    }
    if (embedding_mapped > 0)
        std::printf("\nThe token embedding table (%s) stays mapped from the file: only the rows of tokens in use are "
                    "read, and the kernel can drop them again, so it is not in the total.\n",
                    format_bytes(embedding_mapped).c_str());
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
    add_backend_options(cmd, args->backend);
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
