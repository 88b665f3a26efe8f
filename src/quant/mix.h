// Quantization mixes ("Q4_K_M" and friends): which tensor type each tensor of a model gets.
// The rules follow llama.cpp's llama-quantize for Llama-family models, so that the same F16
// input gives a file with the same per-tensor types: e.g. Q4_K_M keeps output.weight and the
// attn_v / ffn_down tensors of half the layers (the first and last eighth, and every third
// in between) at Q6_K.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "quant/types.h"

namespace hearth::quant {

// llama.cpp's llama_ftype numbers, stored in GGUF as `general.file_type`.
enum class FileType : uint32_t {
    AllF32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    Q2_K_S = 21,
    IQ4_NL = 25,
    IQ4_XS = 30,
    BF16 = 32,
};

struct MixInfo {
    std::string_view name;  // as llama-quantize spells it: "Q4_K_M"
    FileType file_type;
    Type default_type;  // the type most tensors get
    std::string_view description;
    // llama.cpp refuses to write this mix without an importance matrix (Q2_K_S), and so do we
    // until `quantize --imatrix` exists.
    bool needs_importance_matrix = false;
};

// The mixes hearth can write, in llama-quantize's listing order (aliases included).
std::span<const MixInfo> all_mixes();
// Case-insensitive, aliases included ("q4_k" is Q4_K_M).
const MixInfo* find_mix(std::string_view name);
// "Q4_K_M" for a general.file_type value; nullopt for values hearth does not name.
std::optional<std::string_view> file_type_name(uint32_t file_type);

// What the mixing rules need to know of the model.
struct ModelShape {
    int64_t layer_count = 0;
    int64_t head_count = 0;
    int64_t head_count_kv = 0;
    int64_t expert_count = 0;
    bool has_output_tensor = true;  // false: output tied to token_embd
    int64_t attention_v_count = 0;  // tensors whose name contains attn_v.weight (or attn_qkv)
};

struct MixOptions {
    bool pure = false;                    // every quantizable tensor gets the default type
    std::optional<Type> output_type;      // --output-tensor-type
    std::optional<Type> embedding_type;   // --token-embedding-type
    bool quantize_output = true;          // false: --leave-output-tensor
};

// Chooses tensor types one tensor at a time. Tensors must be presented in llama.cpp's
// processing order (see llama_tensor_order_less): the attn_v and ffn_down rules count layers
// by the order in which those tensors arrive.
class MixPlanner {
public:
    MixPlanner(const MixInfo& mix, const ModelShape& shape, MixOptions options = {});

    Type choose(std::string_view name, std::span<const int64_t> shape, Type current_type);
    int fallback_count() const { return fallback_count_; }

private:
    Type choose_by_rules(std::string_view name, int64_t row_length, Type type);
    Type fall_back_for_shape(int64_t row_length, Type type);

    const MixInfo& mix_;
    ModelShape model_;
    MixOptions options_;
    int attention_v_index_ = 0;
    int ffn_down_index_ = 0;
    int fallback_count_ = 0;
};

// Whether llama-quantize would quantize this tensor at all (2-D or more, a "weight", not a norm).
bool tensor_allows_quantization(std::string_view name, std::span<const int64_t> shape, bool quantize_output);

// llama.cpp's tensor order when it quantizes: by layer number ("blk.N.", others first), then name.
bool llama_tensor_order_less(std::string_view a, std::string_view b);

}  // namespace hearth::quant
