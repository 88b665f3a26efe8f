// Model hyperparameters, read from GGUF metadata (`<arch>.block_count` etc.). Only what the
// metadata says: nothing is guessed from tensor shapes.
#pragma once

#include <cstdint>
#include <string>

#include "gguf/gguf.h"

namespace hearth::model {

struct RopeScaling {
    std::string type = "none";  // "none", "linear", "yarn" or "llama3" (frequency factors in rope_freqs.weight)
    double factor = 1.0;
    int64_t original_context_length = 0;
};

struct Hparams {
    std::string architecture;
    int64_t layer_count = 0;
    int64_t embedding_length = 0;
    int64_t feed_forward_length = 0;
    int64_t head_count = 0;
    int64_t head_count_kv = 0;
    int64_t context_length = 0;
    int64_t vocab_size = 0;
    int64_t rope_dimension_count = 0;
    double rope_freq_base = 10000.0;
    double rms_norm_epsilon = 1e-5;
    RopeScaling rope_scaling;
    bool tied_output = false;  // no output.weight: the output projection reuses token_embd

    int64_t head_dim() const { return head_count > 0 ? embedding_length / head_count : 0; }
    int64_t gqa_ratio() const { return head_count_kv > 0 ? head_count / head_count_kv : 1; }
};

// Architectures whose block hearth implements.
bool is_supported_architecture(const std::string& architecture);

// Throws hearth::Error naming the file and the key for a missing or invalid value, and for an
// architecture hearth does not implement.
Hparams read_hparams(const gguf::File& file);

}  // namespace hearth::model
