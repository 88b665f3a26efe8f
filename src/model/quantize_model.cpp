#include "model/quantize_model.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "quant/rows.h"

namespace hearth::model {
namespace {

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION
// Rows converted per call: large enough to split over threads, small enough to stay in cache.
constexpr size_t kQuantizeChunkBytes = size_t{4} << 20;

void refuse_same_file(const std::filesystem::path& input, const std::filesystem::path& output) {
    std::error_code error;
    if (std::filesystem::equivalent(input, output, error)) {
        fail("quantize: output {} is the input file; choose another name", output.string());
    }
}

quant::ModelShape model_shape_of(const gguf::File& file) {
    const std::string arch = file.get_string("general.architecture") + ".";
    quant::ModelShape shape;
    shape.layer_count = file.get_int(arch + "block_count");
    shape.head_count = file.find_int(arch + "attention.head_count").value_or(0);
    shape.head_count_kv = file.find_int(arch + "attention.head_count_kv").value_or(shape.head_count);
    shape.expert_count = file.find_int(arch + "expert_count").value_or(0);
    shape.has_output_tensor = file.find_tensor("output.weight") != nullptr;
    for (const gguf::TensorInfo& t : file.tensors()) {
        if (t.name.find("attn_v.weight") != std::string::npos || t.name.find("attn_qkv.weight") != std::string::npos) {
            ++shape.attention_v_count;
        }
    }
    return shape;
}

// The input's metadata with the two keys llama-quantize rewrites moved to the end.
void copy_metadata(const gguf::File& input, gguf::Writer& writer, quant::FileType file_type) {
    for (const gguf::MetadataEntry& entry : input.metadata()) {
        if (entry.key == "general.quantization_version" || entry.key == "general.file_type") continue;
        writer.add_metadata(entry.key, entry.value);
    }
    writer.add_metadata("general.quantization_version", kQuantizationVersion);
    writer.add_metadata("general.file_type", static_cast<uint32_t>(file_type));
}

// Rows [first_row, first_row + rows) of `from`, converted to `to`.
void convert_rows(const gguf::File& input, const gguf::TensorInfo& from, quant::Type to, int threads,
                  int64_t first_row, std::span<uint8_t> out) {
    const int64_t row_length = from.row_length();
    const size_t from_stride = *quant::row_bytes(from.type, row_length);
    const std::span<const uint8_t> source = input.tensor_data(from).subspan(first_row * from_stride);
    if (from.type == to) {
        std::memcpy(out.data(), source.data(), out.size());
        return;
    }
    if (!quant::can_dequantize(from.type)) {
        fail("{}: tensor '{}' has type {}, which hearth cannot read", input.name(), from.name, quant::type_name(from.type));
    }
    if (!quant::can_quantize(to)) fail("quantize: hearth cannot write tensor type {}", quant::type_name(to));
    const auto rows = static_cast<int64_t>(out.size() / *quant::row_bytes(to, row_length));
    std::vector<float> values(static_cast<size_t>(row_length * rows));
    quant::dequantize_rows(from.type, source.data(), values.data(), rows, row_length, threads);
    quant::quantize_rows(to, values.data(), out.data(), rows, row_length, threads);
}

}  // namespace

QuantizeReport quantize_model(const std::filesystem::path& input_path, const std::filesystem::path& output_path,
                              const QuantizeOptions& options, const QuantizeLog& log,
                              const QuantizeProgress& progress) {
    if (!options.mix) fail("quantize: no quantization type given");
    if (options.mix->needs_importance_matrix) {
        fail("quantize: {} needs an importance matrix (as in llama-quantize), which hearth does not take yet; "
             "use Q2_K or Q3_K_S instead",
             options.mix->name);
    }
    refuse_same_file(input_path, output_path);
    const gguf::File input = gguf::File::open(input_path);

    std::vector<const gguf::TensorInfo*> order;
    for (const gguf::TensorInfo& t : input.tensors()) order.push_back(&t);
    std::stable_sort(order.begin(), order.end(), [](const gguf::TensorInfo* a, const gguf::TensorInfo* b) {
        return quant::llama_tensor_order_less(a->name, b->name);
    });

    quant::MixPlanner planner(*options.mix, model_shape_of(input), options.mix_options);
    std::vector<quant::Type> types;
    gguf::Writer writer;
    copy_metadata(input, writer, options.mix->file_type);
    QuantizeReport report;
    for (const gguf::TensorInfo* t : order) {
        const quant::Type to = planner.choose(t->name, t->shape, t->type);
        if (to != t->type && quant::is_quantized(t->type) && !options.allow_requantize) {
            fail("{}: tensor '{}' is already quantized ({}); pass --allow-requantize to quantize it again to {}",
                 input.name(), t->name, quant::type_name(t->type), quant::type_name(to));
        }
        if (to != t->type && !quant::can_quantize(to)) {
            fail("quantize: tensor '{}' would need type {}, which hearth cannot write", t->name, quant::type_name(to));
        }
        types.push_back(to);
        writer.add_tensor({t->name, t->shape, to});
        report.input_tensor_bytes += t->size_bytes;
    }
    report.tensor_count = static_cast<int64_t>(order.size());
    report.fallback_count = planner.fallback_count();

    size_t logged = order.size();
    writer.write_by_rows(
        output_path,
        [&](size_t index, const gguf::TensorInfo& out_info, int64_t first_row, std::span<uint8_t> rows) {
            if (log && logged != index) {
                logged = index;
                log(static_cast<int64_t>(index), report.tensor_count, out_info.name, quant::type_name(order[index]->type),
                    quant::type_name(types[index]));
            }
            convert_rows(input, *order[index], types[index], options.threads, first_row, rows);
            report.output_tensor_bytes += rows.size();
        },
        progress, kQuantizeChunkBytes);
    return report;
}

}  // namespace hearth::model
