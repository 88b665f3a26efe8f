// The block pool behind paged KV caches, and sequences sharing one cache on the CPU backend.
#include "runtime/kv_blocks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "common/error.h"
#include "common/paged_sequences.h"
#include "gguf/gguf.h"
#include "model/test_model.h"
#include "quant/mix.h"

namespace hearth::runtime {
namespace {

using backend::kKvBlockSize;

TEST(KvBlockPool, SequencesGetDistinctBlocksAndGiveThemBack) {
    KvBlockPool pool(5);
    ASSERT_TRUE(pool.grow(1, 1));                 // 1 block
    ASSERT_TRUE(pool.grow(2, 2 * kKvBlockSize));  // 2 blocks
    ASSERT_TRUE(pool.grow(1, kKvBlockSize + 1));  // a second block for sequence 1
    EXPECT_EQ(pool.blocks_of(1).size(), 2u);
    EXPECT_EQ(pool.free_blocks(), 1);
    std::set<int32_t> seen;
    for (int s : {1, 2})
        for (int32_t b : pool.blocks_of(s)) {
            EXPECT_TRUE(b >= 0 && b < 5);
            EXPECT_TRUE(seen.insert(b).second) << "block " << b << " given twice";
        }
    // Too few left: nothing is taken.
    EXPECT_FALSE(pool.grow(3, 2 * kKvBlockSize));
    EXPECT_EQ(pool.free_blocks(), 1);
    EXPECT_TRUE(pool.blocks_of(3).empty());
    // Growing to a length it already holds takes nothing.
    ASSERT_TRUE(pool.grow(2, kKvBlockSize));
    EXPECT_EQ(pool.blocks_of(2).size(), 2u);
    pool.release(1);
    EXPECT_EQ(pool.free_blocks(), 3);
    EXPECT_TRUE(pool.blocks_of(1).empty());
    ASSERT_TRUE(pool.grow(3, 3 * kKvBlockSize));
    EXPECT_EQ(pool.free_blocks(), 0);
}

TEST(KvBlockPool, TablesAreRowsOfTheLongestSequencesBlocks) {
    KvBlockPool pool(6);
    ASSERT_TRUE(pool.grow(7, 3 * kKvBlockSize));
    ASSERT_TRUE(pool.grow(4, 1));
    std::vector<int32_t> tables;
    const std::vector<int> order{4, 7};
    const int64_t stride = pool.tables(order, tables);
    ASSERT_EQ(stride, 3);
    ASSERT_EQ(tables.size(), 6u);
    EXPECT_EQ(tables[0], pool.blocks_of(4)[0]);
    EXPECT_EQ(tables[1], -1);
    EXPECT_EQ(tables[2], -1);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(tables[3 + i], pool.blocks_of(7)[i]);
}

class PagedCpu : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = std::filesystem::temp_directory_path() / ("hearth-paged-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
    }
    static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
    static std::filesystem::path model(const char* mix) {
        model::TestModelOptions options;
        options.preset = model::find_test_model_preset("tiny");
        options.mix = quant::find_mix(mix);
        options.output_scale = 20;
        const std::filesystem::path path = dir_ / (std::string(mix) + ".gguf");
        if (!std::filesystem::exists(path)) model::write_test_model(options, path);
        return path;
    }
    static inline std::filesystem::path dir_;
};

// The same kernels see the same rows either way, but a pass of more rows may group a matmul's
// rows differently (the prompt-vs-steps test's bar).
TEST_F(PagedCpu, SequencesSharingACacheComputeWhatEachDoesAlone) {
    for (const char* mix : {"F16", "Q4_K_M"}) {
        for (const quant::Type kv : {quant::Type::F16, quant::Type::Q8_0}) {
            SCOPED_TRACE(std::string(mix) + ", KV cache " + std::string(quant::type_name(kv)));
            const gguf::File file = gguf::File::open(model(mix));
            cpu::CpuBackend backend(2);
            const model::Llama llama(file, backend);
            testing::expect_paged_sequences_match_separate(llama, kv, 1e-3);
        }
    }
}

// Forty sequences: decoding passes of 40 rows (batched decoding's sizes), and a mixed pass of
// decoding rows and prompt chunks from many sequences.
TEST_F(PagedCpu, ManySequencesSharingACacheComputeWhatEachDoesAlone) {
    for (const quant::Type kv : {quant::Type::F16, quant::Type::Q8_0}) {
        SCOPED_TRACE(std::string("Q4_K_M, KV cache ") + std::string(quant::type_name(kv)));
        const gguf::File file = gguf::File::open(model("Q4_K_M"));
        cpu::CpuBackend backend(2);
        const model::Llama llama(file, backend);
        testing::expect_paged_sequences_match_separate(llama, kv, 1e-3, 40);
    }
}

// forward_greedy gives each row's argmax of the logits forward computes for the same pass.
TEST_F(PagedCpu, GreedyForwardPicksEachRowsLargestLogit) {
    const gguf::File file = gguf::File::open(model("Q4_K_M"));
    cpu::CpuBackend backend(2);
    const model::Llama llama(file, backend);
    const int64_t vocab = llama.hparams().vocab_size;
    const std::vector<int32_t> tokens{11, 22, 33, 44}, positions{0, 0, 1, 0}, sequence_of{0, 1, 1, 2};
    const std::vector<int32_t> tables{0, 1, 2};
    const backend::KvBatch rows{positions, sequence_of, tables, 1};
    model::LlamaWorkspace ws = llama.make_workspace(4, 4);
    std::vector<float> logits(static_cast<size_t>(4 * vocab));
    auto cache = llama.create_kv_cache(3 * kKvBlockSize, quant::Type::F16);
    llama.forward(ws, *cache, tokens, rows, logits, true);
    std::vector<int32_t> next(4, -1);
    auto other_cache = llama.create_kv_cache(3 * kKvBlockSize, quant::Type::F16);
    llama.forward_greedy(ws, *other_cache, tokens, rows, next);
    for (int64_t r = 0; r < 4; ++r) {
        const auto row = std::span(logits).subspan(static_cast<size_t>(r * vocab), static_cast<size_t>(vocab));
        EXPECT_EQ(next[r], std::max_element(row.begin(), row.end()) - row.begin()) << "row " << r;
    }
}

TEST_F(PagedCpu, ABlockOutsideTheCacheIsRefused) {
    const gguf::File file = gguf::File::open(model("F16"));
    cpu::CpuBackend backend(1);
    const model::Llama llama(file, backend);
    auto cache = llama.create_kv_cache(2 * kKvBlockSize, quant::Type::F16);
    model::LlamaWorkspace ws = llama.make_workspace(4);
    std::vector<float> logits(static_cast<size_t>(llama.hparams().vocab_size));
    const std::vector<int32_t> tokens{5}, sequence_of{0};
    const std::vector<int32_t> positions{kKvBlockSize};  // the sequence's second block
    const std::vector<int32_t> beyond{0, 2};               // block 2 of a 2-block cache
    const std::vector<int32_t> short_table{0};             // no entry for the second block
    const std::vector<int32_t> wrong_sequence{1};
    const auto message = [&](const backend::KvBatch& rows) {
        try {
            llama.forward(ws, *cache, tokens, rows, logits);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(message({positions, sequence_of, beyond, 2}).find("cache block 2"), std::string::npos);
    EXPECT_NE(message({positions, sequence_of, short_table, 1}).find("past the 64 positions"), std::string::npos);
    EXPECT_NE(message({positions, wrong_sequence, beyond, 2}).find("sequence 1"), std::string::npos);
}

}  // namespace
}  // namespace hearth::runtime
