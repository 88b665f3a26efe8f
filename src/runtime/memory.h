// What a model needs in RAM before it is loaded, from metadata only, and what the machine has.
#pragma once

#include <cstdint>
#include <string_view>

#include "gguf/gguf.h"
#include "model/hparams.h"
#include "quant/types.h"

namespace hearth::runtime {

// Peak resident memory of a loaded model, in parts. The KV cache is committed at load, so a
// full context cannot run out of memory halfway through a conversation.
struct MemoryEstimate {
    // Every tensor the forward pass reads whole, at the size the backend keeps it (the CPU's
    // load-time repacked copies replace the file's pages).
    uint64_t weights = 0;
    // An untied token-embedding table: mapped from the file, only the rows of tokens in use are
    // read; clean file pages the kernel can drop, so not in total().
    uint64_t embedding_mapped = 0;
    uint64_t kv_cache = 0;  // keys and values for the whole context of every sequence
    uint64_t compute = 0;   // activations of one batch, logits, matmul scratch
    uint64_t runtime = 0;   // the metadata pages, tokenizer tables and code

    uint64_t total() const { return weights + kv_cache + compute + runtime; }
};

// `parallel` sequences each get a KV cache of `context_length` positions. With first_layer > 0 the
// CPU holds only layers [first_layer, layers) and the output layer (a GPU has the rest, -ngl).
MemoryEstimate estimate_memory(const gguf::File& file, const model::Hparams& hparams, int64_t context_length,
                               quant::Type kv_type, int64_t batch_size, int parallel = 1, int64_t first_layer = 0);

// The same parts on a CUDA GPU: every weight uploaded at its device size (the embedding table
// too), the cache and the kernels' buffers in device memory, and the CUDA context and cuBLAS's
// workspace as runtime. The host then holds only the tokenizer and metadata (host_runtime).
struct CudaMemoryEstimate {
    MemoryEstimate device;
    uint64_t host_runtime = 0;
};
// With 0 <= gpu_layers < layers, the GPU holds only layers [0, gpu_layers) and the embedding table.
CudaMemoryEstimate estimate_cuda_memory(const gguf::File& file, const model::Hparams& hparams, int64_t context_length,
                                        quant::Type kv_type, int64_t batch_size, int parallel = 1,
                                        int64_t gpu_layers = -1);

// The layer a tensor belongs to ("blk.12.attn_q.weight": 12), or -1 for the others.
int64_t tensor_layer(std::string_view name);

// MemAvailable from /proc/meminfo (free memory plus what the kernel can reclaim); 0 if unknown.
uint64_t available_memory_bytes();

}  // namespace hearth::runtime
