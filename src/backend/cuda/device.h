// CUDA devices as hearth sees them. Never throws: a machine without a GPU or driver has no devices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::cuda {

struct DeviceInfo {
    int index = 0;
    std::string name;
    int compute_major = 0;
    int compute_minor = 0;
    uint64_t total_memory = 0;
    uint64_t free_memory = 0;
    int multiprocessors = 0;
};

// Empty when there is no GPU or no driver; `why` then says which.
std::vector<DeviceInfo> list_devices(std::string* why = nullptr);

}  // namespace hearth::cuda
