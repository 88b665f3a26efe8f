#include "backend/cpu/kv_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/vector_math.h"
#include "common/error.h"
#include "common/portable_exp.h"
#include "quant/fp16_rows.h"
#include "quant/q8_0.h"

namespace hearth::cpu {

CpuKvCache::CpuKvCache(const backend::KvCacheShape& shape) : shape_(shape) {
    if (shape.type != quant::Type::F16 && shape.type != quant::Type::Q8_0)
        fail("KV cache type {} is not supported (f16 or q8_0)", quant::type_name(shape.type));
    const auto row = quant::row_bytes(shape.type, shape.head_dim);
    if (!row) fail("KV cache: a head of {} values does not fit {} blocks", shape.head_dim, quant::type_name(shape.type));
    row_bytes_ = *row;
    mapped_bytes_ = shape.bytes();
    if (mapped_bytes_ == 0) return;
    // Committed now (MAP_POPULATE), as llama.cpp clears its cache at load: the memory check
    // before loading counted the whole context, and a conversation must not run out of memory
    // halfway through it.
    void* memory = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (memory == MAP_FAILED)
        fail("cannot allocate {:.1f} GiB for the KV cache", mapped_bytes_ / double(1 << 30));
    memory_ = static_cast<uint8_t*>(memory);
}

CpuKvCache::~CpuKvCache() {
    if (memory_) munmap(memory_, mapped_bytes_);
}

uint8_t* CpuKvCache::row(int64_t layer, int which, int64_t kv_head, int64_t position) const {
    const int64_t index = ((layer * 2 + which) * shape_.kv_heads + kv_head) * shape_.capacity + position;
    return memory_ + static_cast<size_t>(index) * row_bytes_;
}

void CpuKvCache::store(int64_t layer, const float* k, const float* v, const backend::KvBatch& rows) {
    const int64_t head_dim = shape_.head_dim;
    for (int64_t t = 0; t < rows.rows(); ++t) {
        const int64_t slot = rows.slot(t, rows.positions[t]);
        if (slot < 0 || slot >= shape_.capacity) fail("KV cache: slot {} is outside the cache's {}", slot, shape_.capacity);
        for (int64_t g = 0; g < shape_.kv_heads; ++g) {
            const float* kt = k + (t * shape_.kv_heads + g) * head_dim;
            const float* vt = v + (t * shape_.kv_heads + g) * head_dim;
            uint8_t* key_row = row(layer, 0, g, slot);
            uint8_t* value_row = row(layer, 1, g, slot);
            if (shape_.type == quant::Type::F16) {
                quant::fp32_to_fp16_row(kt, reinterpret_cast<uint16_t*>(key_row), head_dim);
                quant::fp32_to_fp16_row(vt, reinterpret_cast<uint16_t*>(value_row), head_dim);
            } else {
                quant::quantize_row_q8_0(kt, reinterpret_cast<quant::BlockQ8_0*>(key_row), head_dim);
                quant::quantize_row_q8_0(vt, reinterpret_cast<quant::BlockQ8_0*>(value_row), head_dim);
            }
        }
    }
}

void CpuKvCache::read_rows(const uint8_t* rows, int64_t first, int64_t count, float* out) const {
    const uint8_t* start = rows + static_cast<size_t>(first) * row_bytes_;
    if (shape_.type == quant::Type::F16) {
        quant::fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(start), out, count * shape_.head_dim);
    } else {
        quant::dequantize_row_q8_0(reinterpret_cast<const quant::BlockQ8_0*>(start), out, count * shape_.head_dim);
    }
}

namespace {

// Positions converted to f32 at a time: 64 rows of 128 values of K and of V, 64 KiB, in L2.
constexpr int64_t kKeyBlock = 64;
// A block of keys lies in one cache block, so its slots are consecutive.
static_assert(backend::kKvBlockSize % kKeyBlock == 0);
// Query tokens that share one conversion of a key block during prompt processing.
constexpr int64_t kQueryTile = 16;

// Up to kQueryTile consecutive rows of one sequence.
struct QueryTile {
    int64_t first_row, rows;
};

std::vector<QueryTile> query_tiles(const backend::KvBatch& batch) {
    std::vector<QueryTile> tiles;
    batch.for_each_sequence([&](int64_t first, int64_t count) {
        for (int64_t t = first; t < first + count; t += kQueryTile)
            tiles.push_back({t, std::min(kQueryTile, first + count - t)});
    });
    return tiles;
}

// The running state of one (query token, head): the online softmax of Milakov and Gimelshein.
struct SoftmaxState {
    float max_score;
    float total;
    float* accumulator;  // head_dim values: sum of weight * value
};

// Keys summed at once in the score loop, and head values in the accumulator loop: a vector of
// 16 floats (GCC/Clang vector extension), one register on AVX-512, two on AVX2, held in registers
// across the whole loop. Its operations are lane by lane, so every ISA gives the same bits.
constexpr int64_t kLanes = 16;
static_assert(kKeyBlock % kLanes == 0);
// Unaligned, and allowed to alias the floats it is read from or written to.
using Lanes = float __attribute__((vector_size(kLanes * sizeof(float)), aligned(alignof(float)), may_alias));

Lanes& lanes_at(float* p) { return *reinterpret_cast<Lanes*>(p); }
const Lanes& lanes_at(const float* p) { return *reinterpret_cast<const Lanes*>(p); }

// keys (count rows of head_dim) transposed into kKeyBlock-wide rows: transposed[i * kKeyBlock + j]
// is value i of key j, so a query's scores against the block are vector operations without a
// horizontal sum per key. Columns past count are zero (they are scored, then ignored).
HEARTH_VECTOR_CLONES void transpose_keys(const float* keys, int64_t count, int64_t head_dim, float* transposed) {
    for (int64_t i = 0; i < head_dim; ++i) {
        float* row = transposed + i * kKeyBlock;
        for (int64_t j = 0; j < count; ++j) row[j] = keys[j * head_dim + i];
        for (int64_t j = count; j < kKeyBlock; ++j) row[j] = 0.0f;
    }
}

// Folds keys/values [0, count) of a block into the state. Each sum runs in one fixed order (over
// the head for a score, over the keys for an accumulator value), whatever the vector width.
// scores has room for kKeyBlock values.
HEARTH_VECTOR_CLONES void fold_block(SoftmaxState& state, const float* query, const float* transposed_keys,
                                     const float* values, int64_t count, int64_t head_dim, float scale,
                                     float* scores) {
    for (int64_t first = 0; first < count; first += kLanes) {
        Lanes sums = {};
        for (int64_t i = 0; i < head_dim; ++i) sums += query[i] * lanes_at(transposed_keys + i * kKeyBlock + first);
        lanes_at(scores + first) = sums * scale;
    }
    float block_max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < count; ++j) block_max = std::max(block_max, scores[j]);
    const float new_max = std::max(state.max_score, block_max);
    const float correction = portable_exp(state.max_score - new_max);  // 0 on the first block
    for (int64_t j = 0; j < count; ++j) scores[j] = portable_exp(scores[j] - new_max);  // now the weights
    float total = state.total * correction;
    for (int64_t j = 0; j < count; ++j) total += scores[j];
    state.total = total;
    float* accumulator = state.accumulator;
    int64_t first = 0;
    for (; first + kLanes <= head_dim; first += kLanes) {
        Lanes sums = lanes_at(accumulator + first) * correction;
        for (int64_t j = 0; j < count; ++j) sums += scores[j] * lanes_at(values + j * head_dim + first);
        lanes_at(accumulator + first) = sums;
    }
    for (; first < head_dim; ++first) {
        float sum = accumulator[first] * correction;
        for (int64_t j = 0; j < count; ++j) sum += scores[j] * values[j * head_dim + first];
        accumulator[first] = sum;
    }
    state.max_score = new_max;
}

}  // namespace

void attention(ThreadPool& pool, CpuKvCache& cache, int64_t layer, const float* q, const float* k, const float* v,
               int64_t heads, const backend::KvBatch& rows, float scale, float* out) {
    const backend::KvCacheShape& shape = cache.shape();
    const int64_t head_dim = shape.head_dim, kv_heads = shape.kv_heads;
    const int64_t group = heads / kv_heads;
    const std::span<const int32_t> positions = rows.positions;
    cache.store(layer, k, v, rows);

    const std::vector<QueryTile> tiles = query_tiles(rows);
    pool.run_dynamic(static_cast<int64_t>(tiles.size()) * kv_heads, 1, [&](int64_t begin, int64_t end, int) {
        thread_local std::vector<float> keys, transposed_keys, values, scores, accumulators;
        thread_local std::vector<SoftmaxState> states;
        keys.resize(kKeyBlock * head_dim);
        transposed_keys.resize(kKeyBlock * head_dim);
        values.resize(kKeyBlock * head_dim);
        scores.resize(kKeyBlock);
        accumulators.resize(kQueryTile * group * head_dim);
        for (int64_t task = begin; task < end; ++task) {
            const int64_t g = task % kv_heads;
            const int64_t first_row = tiles[task / kv_heads].first_row;
            const int64_t tile_rows = tiles[task / kv_heads].rows;
            states.resize(tile_rows * group);
            int64_t visible_max = 0;
            for (int64_t r = 0; r < tile_rows; ++r) {
                visible_max = std::max<int64_t>(visible_max, positions[first_row + r] + 1);
                for (int64_t h = 0; h < group; ++h) {
                    float* accumulator = accumulators.data() + (r * group + h) * head_dim;
                    std::fill(accumulator, accumulator + head_dim, 0.0f);
                    states[r * group + h] = {-std::numeric_limits<float>::infinity(), 0.0f, accumulator};
                }
            }
            for (int64_t block = 0; block < visible_max; block += kKeyBlock) {
                const int64_t block_rows = std::min(kKeyBlock, visible_max - block);
                const int64_t slot = rows.slot(first_row, block);
                cache.read_rows(cache.keys(layer, g), slot, block_rows, keys.data());
                cache.read_rows(cache.values(layer, g), slot, block_rows, values.data());
                transpose_keys(keys.data(), block_rows, head_dim, transposed_keys.data());
                for (int64_t r = 0; r < tile_rows; ++r) {
                    const int64_t visible = positions[first_row + r] + 1;
                    if (visible <= block) continue;
                    const int64_t count = std::min(block_rows, visible - block);
                    for (int64_t h = 0; h < group; ++h) {
                        const float* query = q + ((first_row + r) * heads + g * group + h) * head_dim;
                        fold_block(states[r * group + h], query, transposed_keys.data(), values.data(), count,
                                   head_dim, scale, scores.data());
                    }
                }
            }
            for (int64_t r = 0; r < tile_rows; ++r) {
                for (int64_t h = 0; h < group; ++h) {
                    const SoftmaxState& state = states[r * group + h];
                    float* o = out + ((first_row + r) * heads + g * group + h) * head_dim;
                    const float inverse_total = 1.0f / state.total;
                    for (int64_t i = 0; i < head_dim; ++i) o[i] = state.accumulator[i] * inverse_total;
                }
            }
        }
    });
}

void attention_materialized(ThreadPool& pool, CpuKvCache& cache, int64_t layer, const float* q, const float* k,
                            const float* v, int64_t heads, const backend::KvBatch& rows, float scale, float* out) {
    const backend::KvCacheShape& shape = cache.shape();
    const int64_t head_dim = shape.head_dim, kv_heads = shape.kv_heads;
    const int64_t group = heads / kv_heads;
    cache.store(layer, k, v, rows);
    pool.run_dynamic(rows.rows() * kv_heads, 1, [&](int64_t begin, int64_t end, int) {
        thread_local std::vector<float> keys, values, scores;
        for (int64_t task = begin; task < end; ++task) {
            const int64_t row = task / kv_heads, g = task % kv_heads;
            const int64_t visible = rows.positions[row] + 1;
            keys.resize(visible * head_dim);
            values.resize(visible * head_dim);
            scores.resize(visible);
            // Block by block: a sequence's blocks need not be adjacent in the cache.
            for (int64_t first = 0; first < visible; first += backend::kKvBlockSize) {
                const int64_t count = std::min(backend::kKvBlockSize, visible - first);
                const int64_t slot = rows.slot(row, first);
                cache.read_rows(cache.keys(layer, g), slot, count, keys.data() + first * head_dim);
                cache.read_rows(cache.values(layer, g), slot, count, values.data() + first * head_dim);
            }
            for (int64_t h = 0; h < group; ++h) {
                const float* query = q + (row * heads + g * group + h) * head_dim;
                float largest = -std::numeric_limits<float>::infinity();
                for (int64_t p = 0; p < visible; ++p) {
                    float dot = 0;
                    for (int64_t i = 0; i < head_dim; ++i) dot += query[i] * keys[p * head_dim + i];
                    scores[p] = dot * scale;
                    largest = std::max(largest, scores[p]);
                }
                float total = 0;
                for (int64_t p = 0; p < visible; ++p) total += scores[p] = std::exp(scores[p] - largest);
                float* o = out + (row * heads + g * group + h) * head_dim;
                std::fill(o, o + head_dim, 0.0f);
                for (int64_t p = 0; p < visible; ++p) {
                    const float weight = scores[p] / total;
                    for (int64_t i = 0; i < head_dim; ++i) o[i] += weight * values[p * head_dim + i];
                }
            }
        }
    });
}

}  // namespace hearth::cpu
