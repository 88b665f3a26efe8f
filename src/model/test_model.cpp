#include "model/test_model.h"

#include <array>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "common/error.h"
#include "common/parallel.h"
#include "quant/fp16_rows.h"
#include "quant/quant.h"
#include "tokenizer/llama31_vocabulary.h"

namespace hearth::model {
namespace {

constexpr int64_t kVocabSize = 128256;  // the Llama 3.1 tokenizer: 128,000 regular + 256 special
constexpr double kWeightStd = 0.02;     // Hugging Face's initializer_range for Llama
constexpr double kNormWeightStd = 0.1;  // norm weights are 1 ± this, so a skipped norm shows
constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION

// tiny keeps the real vocabulary (so the real tokenizer works) and rows that hold whole
// 256-element K-quant blocks; 1b and 8b are Llama 3.2 1B and Llama 3.1 8B exactly.
constexpr std::array kPresets = {
    TestModelPreset{"tiny", "tiny", 2, 256, 768, 4, 2, 131072, 500000.0, 8.0, 8192, false},
    TestModelPreset{"1b", "1B", 16, 2048, 8192, 32, 8, 131072, 500000.0, 32.0, 8192, true},
    TestModelPreset{"8b", "8B", 32, 4096, 14336, 32, 8, 131072, 500000.0, 8.0, 8192, false},
};

enum class Init { Matrix, Output, Norm, RopeFactors };

struct TensorPlan {
    std::string name;
    std::vector<int64_t> shape;
    Init init;
    quant::Type type = quant::Type::F32;
};

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Element `index` of stream `stream_seed`: four 16-bit uniforms u_k = (bits_k + 0.5) / 2^16 have
// mean 2 and variance 4/12 in sum, so (sum - 2)·√3 is standard. Summed as integers it is one
// exact int-to-float conversion and one multiply: (Σ bits_k + 2 - 2^17) · √3 / 2^16.
inline float normal_sample(uint64_t stream_seed, int64_t index) {
    const uint64_t bits = splitmix64(stream_seed + static_cast<uint64_t>(index) * 0xD1B54A32D192ED03ull);
    const int32_t sum = static_cast<int32_t>((bits & 0xFFFF) + ((bits >> 16) & 0xFFFF) + ((bits >> 32) & 0xFFFF) +
                                             (bits >> 48));
    constexpr float kScale = 1.7320508075688772f / 65536.0f;
    return static_cast<float>(sum + 2 - 131072) * kScale;
}

// scale · samples [first, first + n) of the stream. Integer hashing and two float multiplies
// give the same bits in every lane width, so the AVX-512 build of the loop writes the same file.
inline void fill_normal_loop(uint64_t stream_seed, int64_t first, float scale, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = scale * normal_sample(stream_seed, first + i);
}

__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) void fill_normal_avx512(uint64_t stream_seed,
                                                                                       int64_t first, float scale,
                                                                                       float* out, int64_t n) {
    fill_normal_loop(stream_seed, first, scale, out, n);
}

void fill_normal(uint64_t stream_seed, int64_t first, float scale, float* out, int64_t n) {
    if (cpu_features().avx512) {
        fill_normal_avx512(stream_seed, first, scale, out, n);
    } else {
        fill_normal_loop(stream_seed, first, scale, out, n);
    }
}

uint64_t stream_seed_for(uint64_t seed, std::string_view tensor_name) {
    uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a of the name
    for (char c : tensor_name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    return splitmix64(seed ^ hash);
}

std::vector<TensorPlan> plan_tensors(const TestModelPreset& p) {
    const int64_t dim = p.embedding_length;
    const int64_t kv_dim = dim / p.head_count * p.head_count_kv;
    std::vector<TensorPlan> plan;
    plan.push_back({"rope_freqs.weight", {dim / p.head_count / 2}, Init::RopeFactors});
    plan.push_back({"token_embd.weight", {dim, kVocabSize}, p.tied_output ? Init::Output : Init::Matrix});
    for (int64_t layer = 0; layer < p.layer_count; ++layer) {
        const std::string blk = "blk." + std::to_string(layer) + ".";
        plan.push_back({blk + "attn_norm.weight", {dim}, Init::Norm});
        plan.push_back({blk + "attn_q.weight", {dim, dim}, Init::Matrix});
        plan.push_back({blk + "attn_k.weight", {dim, kv_dim}, Init::Matrix});
        plan.push_back({blk + "attn_v.weight", {dim, kv_dim}, Init::Matrix});
        plan.push_back({blk + "attn_output.weight", {dim, dim}, Init::Matrix});
        plan.push_back({blk + "ffn_norm.weight", {dim}, Init::Norm});
        plan.push_back({blk + "ffn_gate.weight", {dim, p.feed_forward_length}, Init::Matrix});
        plan.push_back({blk + "ffn_up.weight", {dim, p.feed_forward_length}, Init::Matrix});
        plan.push_back({blk + "ffn_down.weight", {p.feed_forward_length, dim}, Init::Matrix});
    }
    plan.push_back({"output_norm.weight", {dim}, Init::Norm});
    if (!p.tied_output) plan.push_back({"output.weight", {dim, kVocabSize}, Init::Output});
    return plan;
}

// Types as `hearth quantize` would choose them from the F16 model, presented in llama.cpp's
// processing order because the mix rules count attn_v and ffn_down layers as they arrive.
void choose_types(std::vector<TensorPlan>& plan, const TestModelPreset& p, const quant::MixInfo& mix) {
    std::vector<TensorPlan*> order;
    for (TensorPlan& t : plan) {
        t.type = t.shape.size() >= 2 ? quant::Type::F16 : quant::Type::F32;
        order.push_back(&t);
    }
    std::sort(order.begin(), order.end(),
              [](const TensorPlan* a, const TensorPlan* b) { return quant::llama_tensor_order_less(a->name, b->name); });
    quant::ModelShape shape{p.layer_count, p.head_count, p.head_count_kv, 0, !p.tied_output, p.layer_count};
    quant::MixPlanner planner(mix, shape);
    for (TensorPlan* t : order) t->type = planner.choose(t->name, t->shape, t->type);
}

// Writes one row of the F16 model's values (generated, then rounded to f16) as f16 bytes.
void generate_f16_row(const TensorPlan& t, uint64_t stream, double output_scale, int64_t row, std::span<float> values,
                      uint8_t* f16_out) {
    const int64_t first = row * static_cast<int64_t>(values.size());
    const float std = static_cast<float>(t.init == Init::Output ? kWeightStd * output_scale : kWeightStd);
    fill_normal(stream, first, std, values.data(), static_cast<int64_t>(values.size()));
    quant::fp32_to_fp16_row(values.data(), reinterpret_cast<uint16_t*>(f16_out), static_cast<int64_t>(values.size()));
}

void fill_vector_tensor(const TensorPlan& t, const TestModelPreset& p, uint64_t stream, std::span<uint8_t> data) {
    std::vector<float> values(t.shape[0]);
    if (t.init == Init::RopeFactors) {
        values = llama3_rope_factors(p.embedding_length / p.head_count, p.rope_freq_base, p.rope_scaling_factor,
                                     p.rope_original_context_length);
    } else {
        for (size_t i = 0; i < values.size(); ++i) {
            values[i] = static_cast<float>(1.0 + kNormWeightStd * normal_sample(stream, static_cast<int64_t>(i)));
        }
    }
    quant::quantize_row(t.type, values.data(), data.data(), static_cast<int64_t>(values.size()));
}

// Rows [first_row, first_row + rows) of a matrix, in its planned type.
void fill_matrix_rows(const TensorPlan& t, uint64_t stream, const TestModelOptions& options, int64_t first_row,
                      std::span<uint8_t> data) {
    const int64_t row_length = t.shape[0];
    const size_t stride = *quant::row_bytes(t.type, row_length);
    const auto rows = static_cast<int64_t>(data.size() / stride);
    parallel_for(rows, options.threads, 16, [&](int64_t begin, int64_t end) {
        std::vector<float> row(row_length);
        std::vector<uint16_t> f16(row_length);
        for (int64_t r = begin; r < end; ++r) {
            uint8_t* out = data.data() + r * stride;
            if (t.type == quant::Type::F16) {
                generate_f16_row(t, stream, options.output_scale, first_row + r, row, out);
                continue;
            }
            generate_f16_row(t, stream, options.output_scale, first_row + r, row, reinterpret_cast<uint8_t*>(f16.data()));
            quant::fp16_to_fp32_row(f16.data(), row.data(), row_length);
            quant::quantize_row(t.type, row.data(), out, row_length);
        }
    });
}

void add_metadata(gguf::Writer& writer, const TestModelOptions& options, const quant::MixInfo& mix) {
    const TestModelPreset& p = *options.preset;
    writer.add_metadata("general.architecture", "llama");
    writer.add_metadata("general.type", "model");
    writer.add_metadata("general.name", "hearth test model " + std::string(p.name));
    writer.add_metadata("general.size_label", std::string(p.size_label));
    writer.add_metadata("llama.block_count", static_cast<uint32_t>(p.layer_count));
    writer.add_metadata("llama.context_length", static_cast<uint32_t>(p.context_length));
    writer.add_metadata("llama.embedding_length", static_cast<uint32_t>(p.embedding_length));
    writer.add_metadata("llama.feed_forward_length", static_cast<uint32_t>(p.feed_forward_length));
    writer.add_metadata("llama.attention.head_count", static_cast<uint32_t>(p.head_count));
    writer.add_metadata("llama.attention.head_count_kv", static_cast<uint32_t>(p.head_count_kv));
    writer.add_metadata("llama.rope.freq_base", static_cast<float>(p.rope_freq_base));
    writer.add_metadata("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    writer.add_metadata("general.file_type", static_cast<uint32_t>(mix.file_type));
    writer.add_metadata("llama.vocab_size", static_cast<uint32_t>(kVocabSize));
    writer.add_metadata("llama.rope.dimension_count", static_cast<uint32_t>(p.embedding_length / p.head_count));

    tokenizer::Vocabulary vocab = tokenizer::llama31_vocabulary();
    if (static_cast<int64_t>(vocab.tokens.size()) != kVocabSize) {
        fail("built-in tokenizer has {} tokens, expected {}", vocab.tokens.size(), kVocabSize);
    }
    std::vector<int32_t> types;
    for (auto type : vocab.token_types) types.push_back(static_cast<int32_t>(type));
    writer.add_metadata("tokenizer.ggml.model", vocab.model);
    writer.add_metadata("tokenizer.ggml.pre", vocab.pre);
    writer.add_metadata("tokenizer.ggml.tokens", gguf::Value::string_array(std::move(vocab.tokens)));
    writer.add_metadata("tokenizer.ggml.token_type", gguf::Value::int32_array(types));
    writer.add_metadata("tokenizer.ggml.merges", gguf::Value::string_array(std::move(vocab.merges)));
    writer.add_metadata("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab.bos_token_id));
    writer.add_metadata("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab.eos_token_id));
    writer.add_metadata("tokenizer.ggml.add_bos_token", vocab.add_bos_token);
    writer.add_metadata("tokenizer.chat_template", vocab.chat_template);
    writer.add_metadata("general.quantization_version", kQuantizationVersion);
    writer.add_metadata("hearth.test_model.preset", std::string(p.name));
    writer.add_metadata("hearth.test_model.seed", options.seed);
    writer.add_metadata("hearth.test_model.output_scale", static_cast<float>(options.output_scale));
}

}  // namespace

std::span<const TestModelPreset> test_model_presets() { return kPresets; }

const TestModelPreset* find_test_model_preset(std::string_view name) {
    for (const TestModelPreset& preset : kPresets) {
        if (preset.name == name) return &preset;
    }
    return nullptr;
}

int64_t test_model_parameter_count(const TestModelPreset& preset) {
    int64_t count = 0;
    for (const TensorPlan& t : plan_tensors(preset)) {
        int64_t elements = 1;
        for (int64_t d : t.shape) elements *= d;
        count += elements;
    }
    return count;
}

float standard_normal_sample(uint64_t stream_seed, int64_t index) { return normal_sample(stream_seed, index); }

std::vector<float> llama3_rope_factors(int64_t head_dim, double freq_base, double factor,
                                       int64_t original_context_length) {
    // Llama 3.1's rope_scaling: low_freq_factor 1, high_freq_factor 4. Wavelengths shorter than
    // original/4 keep their frequency, longer than original are slowed by `factor`, and the
    // band between is interpolated smoothly.
    constexpr double kLowFreqFactor = 1.0;
    constexpr double kHighFreqFactor = 4.0;
    const double low_freq_wavelength = original_context_length / kLowFreqFactor;
    const double high_freq_wavelength = original_context_length / kHighFreqFactor;
    std::vector<float> factors;
    for (int64_t i = 0; i < head_dim; i += 2) {
        const double frequency = 1.0 / std::pow(freq_base, static_cast<double>(i) / head_dim);
        const double wavelength = 2.0 * std::numbers::pi / frequency;
        if (wavelength < high_freq_wavelength) {
            factors.push_back(1.0f);
        } else if (wavelength > low_freq_wavelength) {
            factors.push_back(static_cast<float>(factor));
        } else {
            const double smooth = (original_context_length / wavelength - kLowFreqFactor) / (kHighFreqFactor - kLowFreqFactor);
            factors.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / factor + smooth)));
        }
    }
    return factors;
}

void write_test_model(const TestModelOptions& options, const std::filesystem::path& path,
                      const gguf::Writer::Progress& progress) {
    if (!options.preset) fail("make-test-model: no preset given");
    if (!(options.output_scale > 0.0) || !std::isfinite(options.output_scale)) {
        fail("make-test-model: --output-scale must be a positive number, got {}", options.output_scale);
    }
    const quant::MixInfo& mix = options.mix ? *options.mix : *quant::find_mix("F16");
    if (mix.needs_importance_matrix) fail("make-test-model: {} needs an importance matrix", mix.name);
    std::vector<TensorPlan> plan = plan_tensors(*options.preset);
    choose_types(plan, *options.preset, mix);

    gguf::Writer writer;
    add_metadata(writer, options, mix);
    for (const TensorPlan& t : plan) writer.add_tensor({t.name, t.shape, t.type});
    writer.write_by_rows(
        path,
        [&](size_t index, const gguf::TensorInfo&, int64_t first_row, std::span<uint8_t> rows) {
            const TensorPlan& t = plan[index];
            const uint64_t stream = stream_seed_for(options.seed, t.name);
            if (t.shape.size() == 1) {
                fill_vector_tensor(t, *options.preset, stream, rows);
            } else {
                fill_matrix_rows(t, stream, options, first_row, rows);
            }
        },
        progress);
}

}  // namespace hearth::model
