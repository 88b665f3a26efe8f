#include "quant/mix.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "common/strings.h"

namespace hearth::quant {
namespace {

constexpr std::array kMixes = {
    MixInfo{"Q4_0", FileType::Q4_0, Type::Q4_0, "4.5 bpw, legacy 32-element blocks"},
    MixInfo{"Q4_1", FileType::Q4_1, Type::Q4_1, "5.0 bpw, legacy 32-element blocks with minimum"},
    MixInfo{"Q5_0", FileType::Q5_0, Type::Q5_0, "5.5 bpw, legacy 32-element blocks"},
    MixInfo{"Q5_1", FileType::Q5_1, Type::Q5_1, "6.0 bpw, legacy 32-element blocks with minimum"},
    MixInfo{"Q2_K", FileType::Q2_K, Type::Q2_K, "smallest K-quant mix; large quality loss"},
    MixInfo{"Q2_K_S", FileType::Q2_K_S, Type::Q2_K, "Q2_K with fewer upgraded tensors (needs an importance matrix)",
            true},
    MixInfo{"Q3_K", FileType::Q3_K_M, Type::Q3_K, "alias for Q3_K_M"},
    MixInfo{"Q3_K_S", FileType::Q3_K_S, Type::Q3_K, "3-bit K-quants throughout"},
    MixInfo{"Q3_K_M", FileType::Q3_K_M, Type::Q3_K, "3-bit K-quants, attention and ffn_down upgraded"},
    MixInfo{"Q3_K_L", FileType::Q3_K_L, Type::Q3_K, "3-bit K-quants, more tensors at Q5_K"},
    MixInfo{"IQ4_NL", FileType::IQ4_NL, Type::IQ4_NL, "4.5 bpw non-linear"},
    MixInfo{"IQ4_XS", FileType::IQ4_XS, Type::IQ4_XS, "4.25 bpw non-linear"},
    MixInfo{"Q4_K", FileType::Q4_K_M, Type::Q4_K, "alias for Q4_K_M"},
    MixInfo{"Q4_K_S", FileType::Q4_K_S, Type::Q4_K, "4-bit K-quants, few upgrades"},
    MixInfo{"Q4_K_M", FileType::Q4_K_M, Type::Q4_K, "4-bit K-quants, half of attn_v/ffn_down at Q6_K (default)"},
    MixInfo{"Q5_K", FileType::Q5_K_M, Type::Q5_K, "alias for Q5_K_M"},
    MixInfo{"Q5_K_S", FileType::Q5_K_S, Type::Q5_K, "5-bit K-quants throughout"},
    MixInfo{"Q5_K_M", FileType::Q5_K_M, Type::Q5_K, "5-bit K-quants, half of attn_v/ffn_down at Q6_K"},
    MixInfo{"Q6_K", FileType::Q6_K, Type::Q6_K, "6.56 bpw K-quants"},
    MixInfo{"Q8_0", FileType::Q8_0, Type::Q8_0, "8.5 bpw, nearly lossless"},
    MixInfo{"F16", FileType::F16, Type::F16, "16-bit IEEE half floats"},
    MixInfo{"BF16", FileType::BF16, Type::BF16, "16-bit brain floats"},
    MixInfo{"F32", FileType::AllF32, Type::F32, "32-bit floats"},
};

enum class Category { Output, TokenEmbedding, AttentionQkv, AttentionV, AttentionK, AttentionQ, AttentionOutput, FfnUp, FfnGate, FfnDown, Other };

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }
bool ends_with(std::string_view text, std::string_view tail) {
    return text.size() >= tail.size() && text.substr(text.size() - tail.size()) == tail;
}

Category category_of(std::string_view name) {
    if (name == "output.weight") return Category::Output;
    if (name == "token_embd.weight") return Category::TokenEmbedding;
    if (contains(name, "attn_qkv.weight")) return Category::AttentionQkv;
    if (contains(name, "attn_v.weight")) return Category::AttentionV;
    if (contains(name, "attn_k.weight")) return Category::AttentionK;
    if (contains(name, "attn_q.weight")) return Category::AttentionQ;
    if (contains(name, "attn_output.weight")) return Category::AttentionOutput;
    if (contains(name, "ffn_up")) return Category::FfnUp;
    if (contains(name, "ffn_gate")) return Category::FfnGate;
    if (contains(name, "ffn_down")) return Category::FfnDown;
    return Category::Other;
}

bool is_attention_v_like(Category category) {
    return category == Category::AttentionV || category == Category::AttentionQkv;
}

// llama.cpp's "use_more_bits": the first and last eighth of the layers, and every third layer
// in between, are the sensitive ones that Q4_K_M / Q5_K_M keep at Q6_K.
bool use_more_bits(int64_t layer, int64_t layer_count) {
    return layer < layer_count / 8 || layer >= 7 * layer_count / 8 || (layer - layer_count / 8) % 3 == 2;
}

// Number of dimensions ignoring trailing 1s, as ggml_n_dims counts them.
size_t effective_dims(std::span<const int64_t> shape) {
    size_t dims = shape.size();
    while (dims > 1 && shape[dims - 1] == 1) --dims;
    return dims;
}

int layer_of(std::string_view name) {
    if (name.substr(0, 4) != "blk.") return -1;
    int layer = -1;
    const char* first = name.data() + 4;
    const char* last = name.data() + name.size();
    auto [end, error] = std::from_chars(first, last, layer);
    if (error != std::errc() || end == last || *end != '.') return -1;
    return layer;
}

}  // namespace

std::span<const MixInfo> all_mixes() { return kMixes; }

const MixInfo* find_mix(std::string_view name) {
    for (const MixInfo& mix : kMixes) {
        if (equal_ignoring_case(mix.name, name)) return &mix;
    }
    return nullptr;
}

std::optional<std::string_view> file_type_name(uint32_t file_type) {
    // The canonical name is the last entry with this file type (aliases come first).
    std::optional<std::string_view> name;
    for (const MixInfo& mix : kMixes) {
        if (static_cast<uint32_t>(mix.file_type) == file_type) name = mix.name;
    }
    return name;
}

bool tensor_allows_quantization(std::string_view name, std::span<const int64_t> shape, bool quantize_output) {
    if (effective_dims(shape) < 2) return false;
    if (!ends_with(name, "weight")) return false;
    if (contains(name, "_norm.weight")) return false;
    if (!quantize_output && name == "output.weight") return false;
    if (contains(name, "ffn_gate_inp.weight")) return false;
    if (name == "position_embd.weight" || name == "token_types.weight") return false;
    return true;
}

bool llama_tensor_order_less(std::string_view a, std::string_view b) {
    const int layer_a = layer_of(a);
    const int layer_b = layer_of(b);
    if (layer_a != layer_b) return layer_a < layer_b;
    return a < b;
}

MixPlanner::MixPlanner(const MixInfo& mix, const ModelShape& shape, MixOptions options)
    : mix_(mix), model_(shape), options_(options) {}

Type MixPlanner::choose(std::string_view name, std::span<const int64_t> shape, Type current_type) {
    if (!tensor_allows_quantization(name, shape, options_.quantize_output)) return current_type;
    const Category category = category_of(name);
    if (options_.embedding_type && category == Category::TokenEmbedding) return *options_.embedding_type;
    if (options_.output_type && category == Category::Output) return *options_.output_type;

    Type type = mix_.default_type;
    if (!is_quantized(type)) return type;
    if (!options_.pure) type = choose_by_rules(name, shape[0], type);
    return fall_back_for_shape(shape[0], type);
}

// llama.cpp's llama_tensor_get_type_impl, restricted to the file types hearth writes and to
// dense (non-Falcon) models. Comments name the rule each branch keeps.
Type MixPlanner::choose_by_rules(std::string_view name, int64_t row_length, Type type) {
    const FileType ft = mix_.file_type;
    const Category category = category_of(name);
    const int64_t gqa = model_.head_count_kv > 0 ? model_.head_count / model_.head_count_kv : 1;
    const bool eight_experts = model_.expert_count == 8;

    if (category == Category::Output || (!model_.has_output_tensor && category == Category::TokenEmbedding)) {
        // The output projection (or the embedding tied to it) is the most sensitive tensor:
        // Q6_K, or Q8_0 when its rows don't hold whole blocks of the default type.
        if (row_length % type_info(type).block_elems != 0) return Type::Q8_0;
        return type == Type::Q8_0 ? type : Type::Q6_K;
    }
    if (category == Category::TokenEmbedding) return type;

    if (is_attention_v_like(category)) {
        const int index = attention_v_index_++;
        if (ft == FileType::Q2_K) type = gqa >= 4 ? Type::Q4_K : Type::Q3_K;
        else if (ft == FileType::Q2_K_S && gqa >= 4) type = Type::Q4_K;
        else if (ft == FileType::Q3_K_M) type = index < 2 ? Type::Q5_K : Type::Q4_K;
        else if (ft == FileType::Q3_K_L) type = Type::Q5_K;
        else if ((ft == FileType::IQ4_NL || ft == FileType::IQ4_XS) && gqa >= 4) type = Type::Q5_K;
        else if ((ft == FileType::Q4_K_M || ft == FileType::Q5_K_M) && use_more_bits(index, model_.attention_v_count))
            type = Type::Q6_K;
        else if (ft == FileType::Q4_K_S && index < 4) type = Type::Q5_K;
        // 70B-class models (80 layers) share attn_v across 8 heads: more bits cost little.
        if (model_.layer_count == 80 && (type == Type::Q3_K || type == Type::Q4_K)) type = Type::Q5_K;
        if (eight_experts) type = Type::Q8_0;
        return type;
    }
    if (category == Category::AttentionK) return eight_experts ? Type::Q8_0 : type;
    if (category == Category::FfnDown) {
        const int64_t layer = ffn_down_index_++;
        const int64_t layers = model_.layer_count;
        if (ft == FileType::Q2_K) type = Type::Q3_K;
        else if (ft == FileType::Q2_K_S) {
            if (layer < layers / 8) type = Type::Q4_K;
        } else if (ft == FileType::Q3_K_M) type = layer < layers / 16 ? Type::Q5_K : Type::Q4_K;
        else if (ft == FileType::Q3_K_L) type = Type::Q5_K;
        else if (ft == FileType::Q4_K_M) {
            if (use_more_bits(layer, layers)) type = Type::Q6_K;
        } else if (layer < layers / 8 && (ft == FileType::IQ4_NL || ft == FileType::IQ4_XS)) type = Type::Q5_K;
        else if (ft == FileType::Q5_K_M && use_more_bits(layer, layers)) type = Type::Q6_K;
        else if (ft == FileType::Q4_K_S && layer < layers / 8) type = Type::Q5_K;
        return type;
    }
    if (category == Category::AttentionOutput) {
        if (eight_experts) {
            const bool upgrade = ft == FileType::Q2_K || ft == FileType::Q3_K_S || ft == FileType::Q3_K_M ||
                                 ft == FileType::IQ4_NL || ft == FileType::Q4_K_S || ft == FileType::Q4_K_M ||
                                 ft == FileType::IQ4_XS;
            return upgrade ? Type::Q5_K : type;
        }
        if (ft == FileType::Q2_K) return Type::Q3_K;
        if (ft == FileType::Q3_K_M) return Type::Q4_K;
        if (ft == FileType::Q3_K_L) return Type::Q5_K;
        return type;
    }
    return type;
}

// Rows must hold whole blocks; where they don't, llama.cpp swaps in a type with smaller blocks.
Type MixPlanner::fall_back_for_shape(int64_t row_length, Type type) {
    if (row_length % type_info(type).block_elems == 0) return type;
    ++fallback_count_;
    Type fallback = Type::F16;
    switch (type) {
        case Type::IQ4_XS: fallback = Type::IQ4_NL; break;
        case Type::Q2_K:
        case Type::Q3_K: fallback = Type::Q4_0; break;
        case Type::Q4_K: fallback = Type::Q5_0; break;
        case Type::Q5_K: fallback = Type::Q5_1; break;
        case Type::Q6_K: fallback = Type::Q8_0; break;
        default: fallback = Type::F16; break;
    }
    if (row_length % type_info(fallback).block_elems != 0) fallback = Type::F16;
    return fallback;
}

}  // namespace hearth::quant
