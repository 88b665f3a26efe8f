#include "quant/quant.h"

#include "common/error.h"
#include "quant/float_rows.h"
#include "quant/iq4_nl.h"
#include "quant/iq4_xs.h"
#include "quant/mxfp4.h"
#include "quant/q2_k.h"
#include "quant/q3_k.h"
#include "quant/q4_0.h"
#include "quant/q4_1.h"
#include "quant/q4_k.h"
#include "quant/q5_0.h"
#include "quant/q5_1.h"
#include "quant/q5_k.h"
#include "quant/q6_k.h"
#include "quant/q8_0.h"
#include "quant/q8_k.h"

namespace hearth::quant {
namespace {

using DequantizeRow = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRow = void (*)(const float* src, void* dst, int64_t n);

struct RowCodec {
    Type type;
    DequantizeRow dequantize;
    QuantizeRow quantize;
};

// Adapts a typed row function (blocks of Block) to the untyped signatures of the table.
template <typename Block, void (*Function)(const Block*, float*, int64_t)>
void dequantize_as(const void* src, float* dst, int64_t n) {
    Function(static_cast<const Block*>(src), dst, n);
}

template <typename Block, void (*Function)(const float*, Block*, int64_t)>
void quantize_as(const float* src, void* dst, int64_t n) {
    Function(src, static_cast<Block*>(dst), n);
}

template <typename Block, void (*Dequantize)(const Block*, float*, int64_t),
          void (*Quantize)(const float*, Block*, int64_t)>
constexpr RowCodec codec(Type type) {
    return {type, dequantize_as<Block, Dequantize>, quantize_as<Block, Quantize>};
}

constexpr RowCodec kCodecs[] = {
    codec<float, dequantize_row_f32, quantize_row_f32>(Type::F32),
    codec<uint16_t, dequantize_row_f16, quantize_row_f16>(Type::F16),
    codec<uint16_t, dequantize_row_bf16, quantize_row_bf16>(Type::BF16),
    codec<BlockQ4_0, dequantize_row_q4_0, quantize_row_q4_0>(Type::Q4_0),
    codec<BlockQ4_1, dequantize_row_q4_1, quantize_row_q4_1>(Type::Q4_1),
    codec<BlockQ5_0, dequantize_row_q5_0, quantize_row_q5_0>(Type::Q5_0),
    codec<BlockQ5_1, dequantize_row_q5_1, quantize_row_q5_1>(Type::Q5_1),
    codec<BlockQ8_0, dequantize_row_q8_0, quantize_row_q8_0>(Type::Q8_0),
    codec<BlockQ2K, dequantize_row_q2_k, quantize_row_q2_k>(Type::Q2_K),
    codec<BlockQ3K, dequantize_row_q3_k, quantize_row_q3_k>(Type::Q3_K),
    codec<BlockQ4K, dequantize_row_q4_k, quantize_row_q4_k>(Type::Q4_K),
    codec<BlockQ5K, dequantize_row_q5_k, quantize_row_q5_k>(Type::Q5_K),
    codec<BlockQ6K, dequantize_row_q6_k, quantize_row_q6_k>(Type::Q6_K),
    codec<BlockQ8K, dequantize_row_q8_k, quantize_row_q8_k>(Type::Q8_K),
    codec<BlockIQ4NL, dequantize_row_iq4_nl, quantize_row_iq4_nl>(Type::IQ4_NL),
    codec<BlockIQ4XS, dequantize_row_iq4_xs, quantize_row_iq4_xs>(Type::IQ4_XS),
    codec<BlockMXFP4, dequantize_row_mxfp4, quantize_row_mxfp4>(Type::MXFP4),
};

const RowCodec* find_codec(Type type) {
    for (const RowCodec& codec : kCodecs) {
        if (codec.type == type) return &codec;
    }
    return nullptr;
}

const RowCodec& codec_for(Type type, const char* operation) {
    const RowCodec* codec = find_codec(type);
    if (codec == nullptr) fail("cannot {} tensor type {}: not implemented", operation, type_name(type));
    return *codec;
}

void check_whole_blocks(Type type, int64_t n) {
    if (!row_bytes(type, n)) {
        fail("a row of {} {} values is not a whole number of {}-value blocks", n, type_name(type),
             type_info(type).block_elems);
    }
}

}  // namespace

bool can_dequantize(Type type) {
    return find_codec(type) != nullptr;
}

bool can_quantize(Type type) {
    return find_codec(type) != nullptr;
}

void dequantize_row(Type type, const void* src, float* dst, int64_t n) {
    const RowCodec& codec = codec_for(type, "dequantize");
    check_whole_blocks(type, n);
    codec.dequantize(src, dst, n);
}

void quantize_row(Type type, const float* src, void* dst, int64_t n) {
    const RowCodec& codec = codec_for(type, "quantize");
    check_whole_blocks(type, n);
    codec.quantize(src, dst, n);
}

}  // namespace hearth::quant
