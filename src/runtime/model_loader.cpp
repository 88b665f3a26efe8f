#include "runtime/model_loader.h"

#include <chrono>

#include "backend/cpu/cpu_backend.h"
#include "common/error.h"
#include "common/parallel.h"
#include "common/strings.h"

namespace hearth::runtime {
namespace {

// Control tokens that end a turn in the chat formats hearth knows, beside the file's EOS.
constexpr std::string_view kEndOfTurnTokens[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>",
                                                 "<|endoftext|>", "<|end|>", "<end_of_turn>"};

std::unordered_set<int32_t> find_end_tokens(const tokenizer::Tokenizer& tokenizer) {
    std::unordered_set<int32_t> ends;
    if (tokenizer.eos_id() >= 0) ends.insert(tokenizer.eos_id());
    for (int32_t id = 0; id < static_cast<int32_t>(tokenizer.vocab_size()); ++id) {
        const auto type = tokenizer.token_type(id);
        if (type != tokenizer::TokenType::Control && type != tokenizer::TokenType::UserDefined) continue;
        for (std::string_view end : kEndOfTurnTokens) {
            if (tokenizer.token_text(id) == end) ends.insert(id);
        }
    }
    return ends;
}

void check_memory(const gguf::File& file, const MemoryEstimate& need, int64_t context_length) {
    const uint64_t available = available_memory_bytes();
    if (available == 0 || need.total() <= available) return;
    fail("{}: not enough memory: the model needs {} (weights {}, KV cache for {} tokens {}, compute {}, runtime {}) "
         "but {} is available. Try a smaller context (-c), a q8_0 KV cache (--kv-type q8_0) or a smaller "
         "quantization",
         file.name(), format_bytes(need.total()), format_bytes(need.weights), context_length,
         format_bytes(need.kv_cache), format_bytes(need.compute), format_bytes(need.runtime), format_bytes(available));
}

}  // namespace

std::string describe_placement(const model::Llama& llama) {
    const auto& backends = llama.backends();
    if (backends.size() == 1) return std::string(backends[0]->name());
    int64_t first_layers = 0;
    while (first_layers < llama.hparams().layer_count && &llama.layer_backend(first_layers) == backends[1]) ++first_layers;
    return fmt::format("{} (layers 0-{}) + {}", backends[1]->name(), first_layers - 1, backends[0]->name());
}

LoadedModel::LoadedModel(gguf::File file, const LoadOptions& options) : file_(std::move(file)), options_(options) {}

std::unique_ptr<LoadedModel> LoadedModel::load(const std::filesystem::path& path, const LoadOptions& requested) {
    const auto start = std::chrono::steady_clock::now();
    std::error_code error;
    if (!std::filesystem::exists(path, error)) fail("model file '{}' does not exist", path.string());
    std::unique_ptr<LoadedModel> model(new LoadedModel(gguf::File::open(path), requested));
    LoadOptions& options = model->options_;
    const model::Hparams hparams = model::read_hparams(model->file_);
    if (options.context_length == 0) options.context_length = hparams.context_length;
    if (options.context_length < 0 || options.context_length > hparams.context_length)
        fail("{}: context length {} is outside what the model was trained for (1 to {})", model->file_.name(),
             options.context_length, hparams.context_length);
    if (options.batch_size < 1) fail("batch size must be at least 1, got {}", options.batch_size);
    if (options.kv_type != quant::Type::F16 && options.kv_type != quant::Type::Q8_0)
        fail("KV cache type {} is not supported (f16 or q8_0)", quant::type_name(options.kv_type));
    if (options.threads <= 0) options.threads = default_thread_count();
    options.batch_size = std::min(options.batch_size, options.context_length);

    // -ngl: 0 keeps everything on the CPU; fewer than all layers splits the model.
    if (options.gpu_layers == 0) options.backend = BackendKind::Cpu;
    if (options.gpu_layers > 0 && options.backend == BackendKind::Cpu)
        fail("-ngl {}: layers go to a GPU only with --backend cuda or auto", options.gpu_layers);
    const bool split = options.gpu_layers > 0 && options.gpu_layers < hparams.layer_count;
    const int64_t gpu_layers = split ? options.gpu_layers : -1;
    const CudaMemoryEstimate on_gpu = estimate_cuda_memory(model->file_, hparams, options.context_length,
                                                           options.kv_type, options.batch_size, 1, gpu_layers);
    BackendChoice choice = choose_backend(options.backend, options.device, options.threads, &model->file_,
                                          options.check_memory ? on_gpu.device.total() : 0);
    model->backend_fallback_reason_ = std::move(choice.fallback_reason);
    const bool on_cpu = choice.backend->name() == "cpu";
    if (!on_cpu && split) {
        // The GPU takes the first layers; the CPU the rest and the output layer.
        model->first_layers_backend_ = std::move(choice.backend);
        model->backend_ = std::make_unique<cpu::CpuBackend>(options.threads);
    } else {
        model->backend_ = std::move(choice.backend);
    }
    if (on_cpu || split) {
        model->memory_ = estimate_memory(model->file_, hparams, options.context_length, options.kv_type,
                                         options.batch_size, 1, on_cpu ? 0 : options.gpu_layers);
        if (options.check_memory) check_memory(model->file_, model->memory_, options.context_length);
    } else {
        model->memory_ = on_gpu.device;
    }

    for (backend::Backend* b : {model->backend_.get(), model->first_layers_backend_.get()}) {
        if (b && !b->use_flash_attention(options.flash_attention))
            fail("-fa off: the {} backend has flash attention only", b->name());
    }
    model->llama_ = std::make_unique<model::Llama>(model->file_, *model->backend_, model->first_layers_backend_.get(),
                                                   on_cpu ? 0 : gpu_layers);
    model->tokenizer_ = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(model->file_));
    if (static_cast<int64_t>(model->tokenizer_->vocab_size()) != hparams.vocab_size)
        fail("{}: the tokenizer has {} tokens but the model's vocabulary is {}", model->file_.name(),
             model->tokenizer_->vocab_size(), hparams.vocab_size);
    if (auto source = model->file_.find_string("tokenizer.chat_template")) model->chat_template_.emplace(*source);
    model->end_tokens_ = find_end_tokens(*model->tokenizer_);
    model->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return model;
}

std::string LoadedModel::render_chat(const nlohmann::ordered_json& messages) const {
    if (!chat_template_) {
        std::string prompt;
        for (const auto& message : messages)
            prompt += message.value("role", "user") + ": " + message.value("content", "") + "\n";
        return prompt + "assistant: ";
    }
    chat::ChatTemplateOptions options;
    if (tokenizer_->bos_id() >= 0) options.bos_token = tokenizer_->token_text(tokenizer_->bos_id());
    if (tokenizer_->eos_id() >= 0) options.eos_token = tokenizer_->token_text(tokenizer_->eos_id());
    return chat_template_->render(messages, nlohmann::ordered_json(), options);
}

}  // namespace hearth::runtime
