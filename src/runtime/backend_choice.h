// Which backend runs a model: the CPU, or a CUDA GPU when this build has CUDA and the machine a
// GPU. `auto` takes the GPU when there is one that can run every tensor of the file, and says
// why when it falls back to the CPU; an explicit `cuda` fails with that reason instead.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "gguf/gguf.h"

namespace hearth::runtime {

enum class BackendKind { Auto, Cpu, Cuda };

// "auto", "cpu" or "cuda"; nullopt otherwise.
std::optional<BackendKind> parse_backend_kind(std::string_view name);

// Whether this build can run CUDA at all (compiled with the toolkit).
bool built_with_cuda();

struct GpuMemory {
    std::string name;
    uint64_t free_bytes = 0;
    uint64_t total_bytes = 0;
};
// The memory of CUDA device `device`; nullopt without CUDA, a GPU or that device.
std::optional<GpuMemory> gpu_memory(int device);

struct BackendChoice {
    std::unique_ptr<backend::Backend> backend;
    // Why `auto` chose the CPU ("no CUDA GPU found"); empty otherwise.
    std::string fallback_reason;
};

// Throws hearth::Error for `cuda` on a build or machine that cannot run it, a file with a tensor
// type the GPU kernels lack, or a GPU with less free memory than `gpu_bytes_needed` (0: not
// checked). Without a file (a bandwidth probe), only the device counts.
BackendChoice choose_backend(BackendKind kind, int device, int threads, const gguf::File* file,
                             uint64_t gpu_bytes_needed = 0);

}  // namespace hearth::runtime
