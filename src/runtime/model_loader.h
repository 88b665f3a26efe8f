// A model ready to generate: the mapped GGUF file, its tokenizer and chat template, a backend,
// and the Llama block over it. Loading reads only metadata; weights are paged in by the kernel
// the first time a token touches them.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "backend/backend.h"
#include "chat/chat_template.h"
#include "gguf/gguf.h"
#include "model/llama.h"
#include "runtime/backend_choice.h"
#include "runtime/memory.h"
#include "tokenizer/tokenizer.h"

namespace hearth::runtime {

struct LoadOptions {
    int threads = 0;                 // 0: one per core
    int64_t context_length = 4096;   // 0: the model's own (131072 for Llama 3.1)
    quant::Type kv_type = quant::Type::F16;
    int64_t batch_size = 512;        // prompt tokens per forward pass
    bool check_memory = true;        // refuse to load when MemAvailable is below the estimate
    BackendKind backend = BackendKind::Auto;
    int device = 0;                  // CUDA device index
    int64_t gpu_layers = -1;         // -ngl: the first N layers on the GPU, the rest on the CPU (-1: all)
    bool flash_attention = true;     // -fa off: attention that computes every score first (CPU only)
};

// "cpu", "cuda", or "cuda (layers 0-9) + cpu" for a model split with -ngl.
std::string describe_placement(const model::Llama& llama);

class LoadedModel {
  public:
    // Throws hearth::Error: a missing or damaged file, an unsupported architecture or type, a
    // context larger than the model's, too little memory (with the figures).
    static std::unique_ptr<LoadedModel> load(const std::filesystem::path& path, const LoadOptions& options);

    const gguf::File& file() const { return file_; }
    const model::Hparams& hparams() const { return llama_->hparams(); }
    const model::Llama& llama() const { return *llama_; }
    const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
    // nullptr when the file has no tokenizer.chat_template.
    const chat::ChatTemplate* chat_template() const { return chat_template_ ? &*chat_template_ : nullptr; }
    const LoadOptions& options() const { return options_; }
    // What the chosen backend's memory holds (RAM, or the GPU's memory; with -ngl, the RAM's
    // share), estimated before loading.
    const MemoryEstimate& memory() const { return memory_; }
    double load_seconds() const { return load_seconds_; }
    backend::Backend& backend() const { return *backend_; }
    // Why `--backend auto` ran on the CPU; empty when it did not fall back.
    const std::string& backend_fallback_reason() const { return backend_fallback_reason_; }

    // Tokens that end an answer: EOS, and the end-of-turn tokens (<|eot_id|>, <|eom_id|>, ...).
    bool ends_generation(int32_t token) const { return end_tokens_.contains(token); }
    // Renders messages with the model's template (or a plain "role: content" fallback).
    std::string render_chat(const nlohmann::ordered_json& messages) const;

  private:
    LoadedModel(gguf::File file, const LoadOptions& options);

    gguf::File file_;
    LoadOptions options_;
    std::unique_ptr<backend::Backend> backend_;
    std::unique_ptr<backend::Backend> first_layers_backend_;  // -ngl: the GPU's share
    std::string backend_fallback_reason_;
    std::unique_ptr<model::Llama> llama_;
    std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
    std::optional<chat::ChatTemplate> chat_template_;
    std::unordered_set<int32_t> end_tokens_;
    MemoryEstimate memory_;
    double load_seconds_ = 0;
};

}  // namespace hearth::runtime
