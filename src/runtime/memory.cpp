#include "runtime/memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "backend/backend.h"
#include "model/llama.h"

namespace hearth::runtime {

MemoryEstimate estimate_memory(const gguf::File& file, const model::Hparams& h, int64_t context_length,
                               quant::Type kv_type, int64_t batch_size) {
    MemoryEstimate estimate;
    for (const gguf::TensorInfo& tensor : file.tensors()) estimate.weights += tensor.size_bytes;
    const backend::KvCacheShape kv{h.layer_count, h.head_count_kv, h.head_dim(), context_length, kv_type};
    estimate.kv_cache = kv.bytes();
    // The model's workspace for one batch and one row of logits, plus the matmul's prepared
    // activations (at most ~1.4 bytes a value for the 8-bit formats, 4 for float weights).
    const uint64_t prepared_bytes = 4 * static_cast<uint64_t>(std::max(h.embedding_length, h.feed_forward_length));
    estimate.compute = model::llama_workspace_floats(h, batch_size) * sizeof(float) + batch_size * prepared_bytes;
    return estimate;
}

uint64_t available_memory_bytes() {
    std::ifstream meminfo("/proc/meminfo");
    std::string line;
    while (std::getline(meminfo, line)) {
        if (line.rfind("MemAvailable:", 0) == 0) {
            std::istringstream fields(line.substr(13));
            uint64_t kib = 0;
            fields >> kib;
            return kib * 1024;
        }
    }
    return 0;
}

}  // namespace hearth::runtime
