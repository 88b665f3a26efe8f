#include "backend/cuda/device.h"

#include <cuda_runtime.h>

namespace hearth::cuda {

std::vector<DeviceInfo> list_devices(std::string* why) {
    std::vector<DeviceInfo> devices;
    int count = 0;
    if (cudaError_t error = cudaGetDeviceCount(&count); error != cudaSuccess) {
        if (why) *why = cudaGetErrorString(error);
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return devices;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp props{};
        if (cudaGetDeviceProperties(&props, i) != cudaSuccess) continue;
        DeviceInfo info;
        info.index = i;
        info.name = props.name;
        info.compute_major = props.major;
        info.compute_minor = props.minor;
        info.total_memory = props.totalGlobalMem;
        info.multiprocessors = props.multiProcessorCount;
        size_t free_bytes = 0, total_bytes = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
            info.free_memory = free_bytes;
        }
        devices.push_back(info);
    }
    if (devices.empty() && why) *why = "no CUDA device found";
    return devices;
}

}  // namespace hearth::cuda
