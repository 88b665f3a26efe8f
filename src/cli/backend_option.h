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
};

inline void add_backend_options(CLI::App* cmd, BackendArgs& args) {
    cmd->add_option("--backend", args.backend,
                    "auto (a CUDA GPU when there is one that runs every tensor, else the CPU), cpu or cuda")
        ->capture_default_str();
    cmd->add_option("--device", args.device, "CUDA device index")->capture_default_str()->check(CLI::NonNegativeNumber);
}

inline runtime::BackendKind parse_backend(const BackendArgs& args, std::string_view verb) {
    const auto kind = runtime::parse_backend_kind(args.backend);
    if (!kind) fail("{}: --backend {}: give auto, cpu or cuda", verb, args.backend);
    return *kind;
}

}  // namespace hearth::cli
