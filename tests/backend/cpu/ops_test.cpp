// The fast CPU ops against their double-precision references (src/backend/cpu/ops_reference.cpp)
// on seeded random inputs, odd shapes included, and bit-identical across thread counts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/kv_cache.h"
#include "backend/cpu/ops.h"
#include "common/error.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace hearth::cpu {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
}

std::vector<float> poisoned(size_t n) { return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()); }

// Largest |a - b| over max |b|: errors relative to the size of the result.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < b.size(); ++i) {
        if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
        worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return worst / scale;
}

TEST(RmsNorm, MatchesReferenceForOddShapes) {
    ThreadPool pool(3);
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {1, 7}, {3, 256}, {513, 67}, {2, 4096}}) {
        const auto x = random_values(rows * cols, 1, 3.0f);
        const auto weight = random_values(cols, 2);
        auto fast = poisoned(rows * cols), expected = poisoned(rows * cols);
        rmsnorm(pool, x.data(), rows, cols, weight.data(), 1e-5f, fast.data());
        reference::rmsnorm(x.data(), rows, cols, weight.data(), 1e-5f, expected.data());
        // f32 sum of squares over cols values: relative error ~ cols * 2^-24 at worst.
        EXPECT_LT(relative_error(fast, expected), 2e-6) << rows << "x" << cols;
    }
}

backend::RopeParams llama3_rope(int64_t head_dim, std::vector<float>& factors) {
    factors = random_values(head_dim / 2, 3);
    for (float& f : factors) f = 1.0f + std::abs(f) * 4;  // Llama 3's factors lie in [1, 8]
    return {head_dim, head_dim, 500000.0, 1.0, factors.data()};
}

TEST(Rope, MatchesReferenceAtSmallAndHugePositions) {
    ThreadPool pool(2);
    std::vector<float> factors;
    const backend::RopeParams plain{64, 64, 10000.0, 1.0, nullptr};
    const backend::RopeParams partial{64, 32, 10000.0, 0.25, nullptr};  // rotates half of each head
    const backend::RopeParams llama3 = llama3_rope(128, factors);
    for (const backend::RopeParams& rope : {plain, partial, llama3}) {
        const int64_t rows = 5, cols = 4 * rope.head_dim;
        const std::vector<int32_t> positions{0, 1, 17, 4095, 131071};
        auto fast = random_values(rows * cols, 4);
        auto expected = fast;
        cpu::rope(pool, fast.data(), rows, cols, positions, rope);
        reference::rope(expected.data(), rows, cols, positions, rope);
        EXPECT_LT(relative_error(fast, expected), 1e-6) << "rotary dims " << rope.rotary_dims;
        if (rope.rotary_dims < rope.head_dim) {  // the unrotated tail passes through untouched
            const auto original = random_values(rows * cols, 4);
            EXPECT_EQ(fast[rope.head_dim - 1], original[rope.head_dim - 1]);
        }
    }
}

TEST(SwiGlu, MatchesReference) {
    ThreadPool pool(3);
    for (int64_t count : {1, 15, 1 << 15, (1 << 15) + 3}) {
        auto fast = random_values(count, 5, 4.0f);
        auto expected = fast;
        const auto up = random_values(count, 6);
        swiglu(pool, fast.data(), up.data(), count);
        reference::swiglu(expected.data(), up.data(), count);
        EXPECT_LT(relative_error(fast, expected), 1e-6) << count;
    }
}

struct AttentionCase {
    int64_t heads, kv_heads, head_dim;
    int64_t past;  // positions already in the cache
    int64_t rows;  // new tokens
    quant::Type kv_type;
};

// What the cache gives back for a row: the row rounded to the cache's type.
std::vector<float> round_trip(const std::vector<float>& x, int64_t head_dim, quant::Type type) {
    std::vector<float> out(x.size());
    std::vector<uint8_t> row(*quant::row_bytes(type, head_dim));
    for (size_t i = 0; i < x.size(); i += head_dim) {
        quant::quantize_row(type, x.data() + i, row.data(), head_dim);
        quant::dequantize_row(type, row.data(), out.data() + i, head_dim);
    }
    return out;
}

// Runs `past` positions as one batch, then `rows` more, and returns the second batch's output;
// through the streaming kernel, or (flash = false) the one that computes every score first.
std::vector<float> fast_attention(ThreadPool& pool, const AttentionCase& c, const std::vector<float>& q,
                                  const std::vector<float>& k, const std::vector<float>& v, bool flash = true) {
    const auto attention = flash ? &cpu::attention : &cpu::attention_materialized;
    CpuKvCache cache({/*layers=*/2, c.kv_heads, c.head_dim, c.past + c.rows + 3, c.kv_type});
    const int64_t kv_dim = c.kv_heads * c.head_dim, dim = c.heads * c.head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    std::vector<int32_t> positions(c.past + c.rows);
    for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
    std::vector<float> out = poisoned((c.past + c.rows) * dim);
    if (c.past > 0)
        attention(pool, cache, 1, q.data(), k.data(), v.data(), c.heads, backend::KvBatch::single_sequence({positions.data(), size_t(c.past)}), scale,
                  out.data());
    attention(pool, cache, 1, q.data() + c.past * dim, k.data() + c.past * kv_dim, v.data() + c.past * kv_dim, c.heads,
              backend::KvBatch::single_sequence({positions.data() + c.past, size_t(c.rows)}), scale, out.data() + c.past * dim);
    return {out.begin() + c.past * dim, out.end()};
}

TEST(Attention, StreamingMatchesFullSoftmaxReference) {
    const AttentionCase cases[] = {
        {4, 2, 64, 0, 1, quant::Type::F16},      // first token of a sequence
        {4, 2, 64, 0, 513, quant::Type::F16},    // a prompt over several key blocks and query tiles
        {8, 8, 20, 0, 37, quant::Type::F16},     // no grouping, a head size off the SIMD width
        {32, 8, 128, 130, 1, quant::Type::F16},  // Llama 3 8B's shape, decoding after a prompt
        {4, 1, 128, 70, 9, quant::Type::F16},    // a batch that starts mid-block
        {4, 2, 64, 100, 1, quant::Type::Q8_0},
        {4, 2, 64, 0, 100, quant::Type::Q8_0},
    };
    ThreadPool pool(3);
    for (const AttentionCase& c : cases) {
        const int64_t total = c.past + c.rows, kv_dim = c.kv_heads * c.head_dim, dim = c.heads * c.head_dim;
        const auto q = random_values(total * dim, 7, 2.0f);
        const auto k = random_values(total * kv_dim, 8, 2.0f);
        const auto v = random_values(total * kv_dim, 9);
        const std::vector<float> fast = fast_attention(pool, c, q, k, v);
        const std::vector<float> materialized = fast_attention(pool, c, q, k, v, /*flash=*/false);

        // The reference sees what the cache holds: keys and values rounded to its type.
        const auto k_cached = round_trip(k, c.head_dim, c.kv_type), v_cached = round_trip(v, c.head_dim, c.kv_type);
        std::vector<int32_t> positions(c.rows);
        for (int64_t i = 0; i < c.rows; ++i) positions[i] = static_cast<int32_t>(c.past + i);
        std::vector<float> expected = poisoned(c.rows * dim);
        reference::attention(q.data() + c.past * dim, c.rows, c.heads, k_cached.data(), v_cached.data(), total,
                             c.kv_heads, c.head_dim, positions, 1.0f / std::sqrt(static_cast<float>(c.head_dim)),
                             expected.data());
        // f32 scores and exponentials over up to 513 keys: ~1e-6 of the output's size.
        EXPECT_LT(relative_error(fast, expected), 2e-5)
            << c.heads << "/" << c.kv_heads << " heads of " << c.head_dim << ", past " << c.past << ", rows " << c.rows;
        EXPECT_LT(relative_error(materialized, expected), 2e-5) << "without flash attention: " << c.heads << "/"
                                                                 << c.kv_heads << " heads, rows " << c.rows;
    }
}

TEST(Attention, CausalMaskHidesLaterPositions) {
    // Changing a later key and value must not change an earlier query's output.
    const AttentionCase c{4, 2, 64, 0, 9, quant::Type::F16};
    ThreadPool pool(1);
    const int64_t kv_dim = c.kv_heads * c.head_dim, dim = c.heads * c.head_dim;
    const auto q = random_values(c.rows * dim, 10);
    auto k = random_values(c.rows * kv_dim, 11), v = random_values(c.rows * kv_dim, 12);
    const auto before = fast_attention(pool, c, q, k, v);
    for (int64_t i = 8 * kv_dim; i < 9 * kv_dim; ++i) k[i] += 5.0f, v[i] -= 3.0f;
    const auto after = fast_attention(pool, c, q, k, v);
    EXPECT_TRUE(std::equal(before.begin(), before.begin() + 8 * dim, after.begin()));
    EXPECT_FALSE(std::equal(before.begin() + 8 * dim, before.end(), after.begin() + 8 * dim));
}

TEST(Attention, BitIdenticalForAnyThreadCount) {
    const AttentionCase c{8, 2, 64, 40, 77, quant::Type::F16};
    const int64_t total = c.past + c.rows, kv_dim = c.kv_heads * c.head_dim, dim = c.heads * c.head_dim;
    const auto q = random_values(total * dim, 13), k = random_values(total * kv_dim, 14), v = random_values(total * kv_dim, 15);
    ThreadPool one(1), three(3);
    EXPECT_EQ(fast_attention(one, c, q, k, v), fast_attention(three, c, q, k, v));
}

TEST(KvCache, RefusesTypesItCannotHold) {
    const backend::KvCacheShape q4_k{1, 1, 64, 16, quant::Type::Q4_K};
    const backend::KvCacheShape odd_q8_0{1, 1, 20, 16, quant::Type::Q8_0};  // 20 is not a whole Q8_0 block
    EXPECT_THROW(CpuKvCache cache(q4_k), Error);
    EXPECT_THROW(CpuKvCache cache(odd_q8_0), Error);  // 20 is not a whole Q8_0 block
}

// Resident memory of this process, from /proc/self/statm.
size_t resident_bytes() {
    FILE* statm = std::fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (statm) {
        if (std::fscanf(statm, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(statm);
    }
    return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// The cache is committed when it is made (as llama.cpp clears its cache at load), so the memory
// estimate that let the model load is what it holds, and a long conversation cannot run out of
// memory halfway. 16 layers, 8 KV heads of 64 values, 8192 positions: 256 MiB.
TEST(KvCache, TheWholeCacheIsCommittedWhenMade) {
    const backend::KvCacheShape shape{16, 8, 64, 8192, quant::Type::F16};
    ASSERT_EQ(shape.bytes(), size_t{256} << 20);
    const size_t before = resident_bytes();
    CpuKvCache cache(shape);
    EXPECT_GE(resident_bytes() - before, shape.bytes() * 95 / 100);
    const auto k = random_values(8 * 64, 16), v = random_values(8 * 64, 17);
    const int32_t last_position[] = {8191};
    cache.store(15, k.data(), v.data(), backend::KvBatch::single_sequence(last_position));  // the last slot of the last layer
    std::vector<float> back(64);
    cache.read_rows(cache.keys(15, 7), 8191, 1, back.data());
    EXPECT_NEAR(back[5], k[7 * 64 + 5], 1e-2 * std::abs(k[7 * 64 + 5]) + 1e-3);
}

}  // namespace
}  // namespace hearth::cpu
