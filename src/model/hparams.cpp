#include "model/hparams.h"

#include "common/error.h"

namespace hearth::model {
namespace {

int64_t positive(const gguf::File& file, const std::string& key, int64_t value) {
    if (value <= 0) fail("{}: metadata '{}' must be positive, got {}", file.name(), key, value);
    return value;
}

}  // namespace

bool is_supported_architecture(const std::string& architecture) { return architecture == "llama"; }

Hparams read_hparams(const gguf::File& file) {
    Hparams h;
    h.architecture = file.get_string("general.architecture");
    if (!is_supported_architecture(h.architecture)) {
        fail("{}: architecture '{}' is not supported (hearth runs: llama)", file.name(), h.architecture);
    }
    const std::string arch = h.architecture + ".";
    auto required = [&](const char* key) { return positive(file, arch + key, file.get_int(arch + key)); };

    h.layer_count = required("block_count");
    h.embedding_length = required("embedding_length");
    h.feed_forward_length = required("feed_forward_length");
    h.head_count = required("attention.head_count");
    h.head_count_kv = file.find_int(arch + "attention.head_count_kv").value_or(h.head_count);
    positive(file, arch + "attention.head_count_kv", h.head_count_kv);
    h.context_length = required("context_length");
    h.rope_freq_base = file.find_float(arch + "rope.freq_base").value_or(10000.0);
    h.rms_norm_epsilon = file.find_float(arch + "attention.layer_norm_rms_epsilon").value_or(1e-5);
    if (h.embedding_length % h.head_count != 0 || h.head_count % h.head_count_kv != 0) {
        fail("{}: {} heads ({} for keys and values) do not divide embedding length {}", file.name(), h.head_count,
             h.head_count_kv, h.embedding_length);
    }
    h.rope_dimension_count = file.find_int(arch + "rope.dimension_count").value_or(h.head_dim());

    const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
    const int64_t token_count = tokens && tokens->as_array() ? static_cast<int64_t>(tokens->as_array()->items.size()) : 0;
    h.vocab_size = file.find_int(arch + "vocab_size").value_or(token_count);
    if (h.vocab_size <= 0) {
        if (const gguf::TensorInfo* embedding = file.find_tensor("token_embd.weight"); embedding && embedding->shape.size() >= 2) {
            h.vocab_size = embedding->shape[1];
        }
    }
    positive(file, arch + "vocab_size", h.vocab_size);

    if (file.find_tensor("rope_freqs.weight")) {
        h.rope_scaling.type = "llama3";
    } else if (auto type = file.find_string(arch + "rope.scaling.type")) {
        h.rope_scaling.type = *type;
    }
    h.rope_scaling.factor = file.find_float(arch + "rope.scaling.factor").value_or(1.0);
    h.rope_scaling.original_context_length = file.find_int(arch + "rope.scaling.original_context_length").value_or(0);
    h.tied_output = file.find_tensor("output.weight") == nullptr;
    return h;
}

}  // namespace hearth::model
