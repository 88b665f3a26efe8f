#include "runtime/backend_choice.h"

#include "backend/cpu/cpu_backend.h"
#include "common/error.h"
#include "common/strings.h"
#include "quant/types.h"
#ifdef HEARTH_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/device.h"
#endif

namespace hearth::runtime {
namespace {

#ifdef HEARTH_WITH_CUDA
// Why the GPU cannot run this file, or empty when it can.
std::string why_not_cuda(int device, const gguf::File* file, uint64_t bytes_needed) {
    std::string why;
    const std::vector<cuda::DeviceInfo> devices = cuda::list_devices(&why);
    if (devices.empty()) return "no CUDA GPU found (" + why + ")";
    if (device < 0 || device >= static_cast<int>(devices.size()))
        return "--device " + std::to_string(device) + ": this machine has " + std::to_string(devices.size()) +
               " GPU(s)";
    const cuda::DeviceInfo& gpu = devices[device];
    if (bytes_needed > gpu.free_memory)
        return fmt::format("the model needs {} of GPU memory but {} has {} free (try a smaller context (-c), a q8_0 KV "
                           "cache or a smaller quantization)",
                           format_bytes(bytes_needed), gpu.name, format_bytes(gpu.free_memory));
    if (!file) return {};
    for (const gguf::TensorInfo& tensor : file->tensors()) {
        if (tensor.shape.size() != 2 || tensor.name == "token_embd.weight") continue;
        if (!cuda::can_multiply(static_cast<uint32_t>(tensor.type)))
            return "tensor '" + tensor.name + "' is " + std::string(quant::type_name(tensor.type)) +
                   ", which the CUDA kernels do not multiply yet";
    }
    return {};
}
#endif

}  // namespace

std::optional<BackendKind> parse_backend_kind(std::string_view name) {
    if (name == "auto") return BackendKind::Auto;
    if (name == "cpu") return BackendKind::Cpu;
    if (name == "cuda") return BackendKind::Cuda;
    return std::nullopt;
}

std::optional<GpuMemory> gpu_memory(int device) {
#ifdef HEARTH_WITH_CUDA
    const std::vector<cuda::DeviceInfo> devices = cuda::list_devices();
    if (device < 0 || device >= static_cast<int>(devices.size())) return std::nullopt;
    return GpuMemory{devices[device].name, devices[device].free_memory, devices[device].total_memory};
#else
    (void)device;
    return std::nullopt;
#endif
}

bool built_with_cuda() {
#ifdef HEARTH_WITH_CUDA
    return true;
#else
    return false;
#endif
}

BackendChoice choose_backend(BackendKind kind, int device, int threads, const gguf::File* file,
                             uint64_t gpu_bytes_needed) {
    BackendChoice choice;
    if (kind == BackendKind::Cpu) {
        choice.backend = std::make_unique<cpu::CpuBackend>(threads);
        return choice;
    }
#ifdef HEARTH_WITH_CUDA
    const std::string why = why_not_cuda(device, file, gpu_bytes_needed);
    if (why.empty()) {
        choice.backend = std::make_unique<cuda::CudaBackend>(device);
        return choice;
    }
    if (kind == BackendKind::Cuda) fail("{}--backend cuda: {}", file ? file->name() + ": " : "", why);
    choice.fallback_reason = why;
#else
    (void)device;
    (void)gpu_bytes_needed;
    if (kind == BackendKind::Cuda)
        fail("{}--backend cuda: this hearth was built without CUDA (configure with the CUDA toolkit installed)",
             file ? file->name() + ": " : "");
    choice.fallback_reason = "this hearth was built without CUDA";
#endif
    choice.backend = std::make_unique<cpu::CpuBackend>(threads);
    return choice;
}

}  // namespace hearth::runtime
