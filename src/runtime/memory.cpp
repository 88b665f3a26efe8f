#include "runtime/memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "backend/backend.h"
#include "backend/cpu/matmul.h"
#include "backend/cuda/kernels.h"
#include "model/llama.h"

namespace hearth::runtime {

namespace {

// The tokenizer's tables (strings, hash maps of the vocabulary and the merges) and the code,
// fitted to this build: the Llama 3 tokenizer of 128,256 tokens and 280,147 merges takes 88 MiB
// of RSS in `hearth run` besides the weights, KV cache and compute, ~6 MB of it metadata pages.
constexpr uint64_t kTokenizerBytesPerEntry = 160;
constexpr uint64_t kCodeBytes = uint64_t{8} << 20;
// What a process's CUDA context (its kernels loaded lazily) and cuBLAS's handle and workspace
// take on the GPU beside hearth's own allocations, measured on an H100 (scripts/gpu-bench.sh).
constexpr uint64_t kCudaContextBytes = uint64_t{512} << 20;

uint64_t array_length(const gguf::File& file, std::string_view key) {
    const gguf::Value* value = file.find(key);
    const gguf::Array* array = value ? value->as_array() : nullptr;
    return array ? array->items.size() : 0;
}

// The bytes the CPU backend keeps for a tensor: its load-time repacked copy where the best
// kernels have one, else the file's bytes.
uint64_t resident_bytes(const gguf::TensorInfo& tensor) {
    if (tensor.shape.size() == 2) {
        const cpu::WeightMatrix matrix{tensor.type, nullptr, tensor.row_count(), tensor.row_length(),
                                       static_cast<size_t>(tensor.size_bytes / std::max<int64_t>(1, tensor.row_count()))};
        if (const size_t repacked = cpu::repacked_bytes(matrix); repacked > 0) return repacked;
    }
    return tensor.size_bytes;
}

// The metadata pages, the tokenizer's tables and the code: what the host holds wherever the
// weights are.
uint64_t host_runtime_bytes(const gguf::File& file) {
    const uint64_t entries = array_length(file, "tokenizer.ggml.tokens") + array_length(file, "tokenizer.ggml.merges");
    return file.data_section_offset() + kTokenizerBytesPerEntry * entries + kCodeBytes;
}

}  // namespace

int64_t tensor_layer(std::string_view name) {
    if (!name.starts_with("blk.")) return -1;
    int64_t layer = 0;
    size_t i = 4;
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) layer = layer * 10 + (name[i] - '0');
    return i > 4 && i < name.size() && name[i] == '.' ? layer : -1;
}

MemoryEstimate estimate_memory(const gguf::File& file, const model::Hparams& h, int64_t context_length,
                               quant::Type kv_type, int64_t batch_size, int parallel, int64_t first_layer) {
    MemoryEstimate estimate;
    for (const gguf::TensorInfo& tensor : file.tensors()) {
        const int64_t layer = tensor_layer(tensor.name);
        if (layer >= 0 && layer < first_layer) continue;  // on the GPU
        if (tensor.name == "token_embd.weight" && !h.tied_output) {
            if (first_layer == 0) estimate.embedding_mapped += tensor.size_bytes;  // else the GPU gathers
        } else {
            estimate.weights += resident_bytes(tensor);
        }
    }
    const backend::KvCacheShape kv{h.layer_count - first_layer, h.head_count_kv, h.head_dim(),
                                   backend::kv_capacity_for(context_length), kv_type};
    estimate.kv_cache = kv.bytes() * static_cast<uint64_t>(std::max(1, parallel));
    // The model's workspace for one batch and one row of logits, plus the matmul's prepared
    // activations (at most ~1.4 bytes a value for the 8-bit formats, 6 for F16 weights).
    const uint64_t prepared_bytes = 6 * static_cast<uint64_t>(std::max(h.embedding_length, h.feed_forward_length));
    estimate.compute = model::llama_workspace_floats(h, batch_size) * sizeof(float) + batch_size * prepared_bytes;
    estimate.runtime = host_runtime_bytes(file);
    return estimate;
}

CudaMemoryEstimate estimate_cuda_memory(const gguf::File& file, const model::Hparams& h, int64_t context_length,
                                        quant::Type kv_type, int64_t batch_size, int parallel, int64_t gpu_layers) {
    CudaMemoryEstimate estimate;
    MemoryEstimate& d = estimate.device;
    const bool split = gpu_layers >= 0 && gpu_layers < h.layer_count;
    uint64_t largest_matrix = 0;
    for (const gguf::TensorInfo& tensor : file.tensors()) {
        const int64_t layer = tensor_layer(tensor.name);
        const bool on_gpu = !split || (layer >= 0 ? layer < gpu_layers : tensor.name == "token_embd.weight");
        if (!on_gpu) continue;
        const int64_t rows = std::max<int64_t>(1, tensor.row_count());
        const size_t row_bytes = static_cast<size_t>(tensor.size_bytes / rows);
        d.weights += cuda::device_row_stride(static_cast<uint32_t>(tensor.type), row_bytes) * rows;
        largest_matrix = std::max<uint64_t>(largest_matrix, static_cast<uint64_t>(rows) * tensor.row_length());
    }
    const backend::KvCacheShape kv{split ? gpu_layers : h.layer_count, h.head_count_kv, h.head_dim(),
                                   backend::kv_capacity_for(context_length), kv_type};
    d.kv_cache = kv.bytes() * static_cast<uint64_t>(std::max(1, parallel));
    // Prompt attention's score matrices, and a q8_0 cache's keys and values as f16 for cuBLAS.
    const uint64_t prompt_attention_bytes =
        cuda::prompt_attention_scratch_bytes(batch_size, h.head_count, context_length) +
        (kv_type == quant::Type::F16 ? 0
                                     : 2 * static_cast<uint64_t>(h.head_count_kv * context_length * h.head_dim()) * 2);
    // The workspace; the int8 and f16 copies of a batch's widest activations; one slab of f16
    // weights for the prompt GEMMs; the attention's partial results.
    const uint64_t widest = static_cast<uint64_t>(batch_size) * std::max(h.embedding_length, h.feed_forward_length);
    d.compute = model::llama_workspace_floats(h, batch_size) * sizeof(float) + (widest + widest / 4 + 2 * widest) +
                std::min<uint64_t>(cuda::kDequantizedSlabBytes, 2 * largest_matrix) +
                cuda::attention_scratch_floats(batch_size, h.head_count, h.head_dim(), context_length) * sizeof(float) +
                prompt_attention_bytes;
    d.runtime = kCudaContextBytes;
    estimate.host_runtime = host_runtime_bytes(file);
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
