// Test models: the real Llama 3.1 architecture, metadata and tokenizer with seeded random
// weights, from a tiny shape up to the exact Llama 3.1 8B. No real weights can be downloaded on
// our machines; these files stand in for them in every correctness test and benchmark.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>

#include "gguf/gguf.h"
#include "quant/mix.h"

namespace hearth::model {

struct TestModelPreset {
    std::string_view name;
    std::string_view size_label;
    int64_t layer_count;
    int64_t embedding_length;
    int64_t feed_forward_length;
    int64_t head_count;
    int64_t head_count_kv;
    int64_t context_length;
    double rope_freq_base;
    double rope_scaling_factor;  // Llama 3 frequency scaling, baked into rope_freqs.weight
    int64_t rope_original_context_length;
    bool tied_output;  // Llama 3.2 1B reuses token_embd as the output projection
};

std::span<const TestModelPreset> test_model_presets();
const TestModelPreset* find_test_model_preset(std::string_view name);

struct TestModelOptions {
    const TestModelPreset* preset = nullptr;
    const quant::MixInfo* mix = nullptr;  // nullptr: F16
    uint64_t seed = 42;
    // Multiplies the spread of output.weight (or of token_embd when tied) so that logits are
    // confident and greedy decoding does not flip on rounding between two engines.
    double output_scale = 1.0;
    int threads = 1;
};

// Writes the model atomically. The weights are those of the F16 model for this seed; other
// mixes quantize them exactly as `hearth quantize` does from that F16 file. Memory: one tensor.
void write_test_model(const TestModelOptions& options, const std::filesystem::path& path,
                      const gguf::Writer::Progress& progress = {});

// Number of parameters (elements of all tensors) the preset's model has.
int64_t test_model_parameter_count(const TestModelPreset& preset);

// The generator: element `index` of the stream `stream_seed`, approximately standard normal
// (Irwin–Hall sum of four uniforms, rescaled; tails end at ±3.46). Counter-based, so any
// slice can be generated on any thread and the bytes do not depend on the thread count.
float standard_normal_sample(uint64_t stream_seed, int64_t index);

// The llama3 RoPE frequency factors (rope_freqs.weight) for a head of `head_dim`.
std::vector<float> llama3_rope_factors(int64_t head_dim, double freq_base, double factor,
                                       int64_t original_context_length);

}  // namespace hearth::model
