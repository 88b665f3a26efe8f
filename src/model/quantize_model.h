// `hearth quantize`: a GGUF model in, the same model with a quantization mix applied out.
// Tensor order, metadata and per-tensor types follow llama-quantize, so that the same input
// gives the same tensor types and byte-identical tensor data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "quant/mix.h"

namespace hearth::model {

struct QuantizeOptions {
    const quant::MixInfo* mix = nullptr;
    int threads = 1;
    bool allow_requantize = false;  // input tensors already quantized may be quantized again
    quant::MixOptions mix_options;
};

struct QuantizeReport {
    uint64_t input_tensor_bytes = 0;
    uint64_t output_tensor_bytes = 0;
    int64_t tensor_count = 0;
    int64_t fallback_count = 0;  // tensors whose rows forced a type with smaller blocks
};

// Called before each tensor is converted: index, count, name, from-type and to-type names.
using QuantizeLog = std::function<void(int64_t index, int64_t count, const std::string& name,
                                       std::string_view from, std::string_view to)>;
using QuantizeProgress = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;

QuantizeReport quantize_model(const std::filesystem::path& input, const std::filesystem::path& output,
                              const QuantizeOptions& options, const QuantizeLog& log = {},
                              const QuantizeProgress& progress = {});

}  // namespace hearth::model
