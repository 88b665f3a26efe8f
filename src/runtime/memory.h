// What a model needs in RAM before it is loaded, from metadata only, and what the machine has.
#pragma once

#include <cstdint>

#include "gguf/gguf.h"
#include "model/hparams.h"
#include "quant/types.h"

namespace hearth::runtime {

struct MemoryEstimate {
    uint64_t weights = 0;   // tensor data, mapped from the file
    uint64_t kv_cache = 0;  // keys and values for the whole context
    uint64_t compute = 0;   // activations of one batch, logits, matmul scratch

    uint64_t total() const { return weights + kv_cache + compute; }
};

MemoryEstimate estimate_memory(const gguf::File& file, const model::Hparams& hparams, int64_t context_length,
                               quant::Type kv_type, int64_t batch_size);

// MemAvailable from /proc/meminfo (free memory plus what the kernel can reclaim); 0 if unknown.
uint64_t available_memory_bytes();

}  // namespace hearth::runtime
