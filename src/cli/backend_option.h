// The --backend and --device flags every verb that runs a model shares.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>

#include "common/error.h"
#include "runtime/backend_choice.h"

namespace hearth::cli {

struct BackendArgs {
    std::string backend = "auto";
    int device = 0;
    int64_t gpu_layers = -1;  // -1: every layer on the chosen backend
};

inline void add_backend_options(CLI::App* cmd, BackendArgs& args) {
    cmd->add_option("--backend", args.backend,
                    "auto (a CUDA GPU when there is one that runs every tensor, else the CPU), cpu or cuda")
        ->capture_default_str();
    cmd->add_option("--device", args.device, "CUDA device index")->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--n-gpu-layers", args.gpu_layers,
                    "The first N layers on the GPU, the rest and the output layer on the CPU, for a model larger than "
                    "the GPU (also -ngl; -1: all on the chosen backend, 0: all on the CPU)")
        ->capture_default_str()->check(CLI::Range(int64_t{-1}, int64_t{1} << 20));
}

inline runtime::BackendKind parse_backend(const BackendArgs& args, std::string_view verb) {
    const auto kind = runtime::parse_backend_kind(args.backend);
    if (!kind) fail("{}: --backend {}: give auto, cpu or cuda", verb, args.backend);
    if (args.gpu_layers > 0 && *kind == runtime::BackendKind::Cpu)
        fail("{}: -ngl {} with --backend cpu: layers go to a GPU with --backend cuda or auto", verb, args.gpu_layers);
    return *kind;
}

// Fills a LoadOptions' backend fields.
template <typename Options>
void set_backend_options(Options& options, const BackendArgs& args, std::string_view verb) {
    options.backend = parse_backend(args, verb);
    options.device = args.device;
    options.gpu_layers = args.gpu_layers;
}

}  // namespace hearth::cli
