// A check any backend's tests run: sequences sharing one paged KV cache (blocks handed out by
// runtime::KvBlockPool, so a sequence's blocks are neither first nor adjacent) compute the logits
// each computes alone, in a cache of its own filled in order. Three sequences (or more: batched
// decoding's passes of tens of rows), the first past the first cache block: a prompt each,
// decoding steps of one row per sequence in one pass, then one pass that mixes decoding rows with
// prompt chunks.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/llama.h"
#include "runtime/kv_blocks.h"

namespace hearth::testing {

struct PagedSequencesCase {
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::vector<int32_t>> steps;  // per step, one token per sequence
    std::vector<std::vector<int32_t>> last;   // the mixed pass: per sequence, its tokens
};

inline PagedSequencesCase make_paged_sequences_case(uint32_t seed, int sequences = 3) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> token(0, 9999);
    const auto tokens = [&](int64_t n) {
        std::vector<int32_t> t(static_cast<size_t>(n));
        for (int32_t& x : t) x = token(rng);
        return t;
    };
    PagedSequencesCase c;
    c.prompts = {tokens(70), tokens(9), tokens(100)};
    c.last = {tokens(1), tokens(10), tokens(12)};
    // More sequences: short prompts, and a decoding row each in the mixed pass but every eighth's.
    for (int s = 3; s < sequences; ++s) {
        c.prompts.push_back(tokens(1 + (5 * s) % 17));
        c.last.push_back(tokens(s % 8 == 0 ? 9 : 1));
    }
    for (int step = 0; step < 4; ++step) c.steps.push_back(tokens(sequences));
    return c;
}

// The largest |a - b| over the largest |b| (at least 1).
inline double relative_gap(std::span<const float> a, std::span<const float> b) {
    double gap = 0, scale = 1;
    for (size_t i = 0; i < b.size(); ++i) {
        gap = std::max(gap, std::abs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return gap / scale;
}

// Runs the case both ways on `llama` and expects every compared row of logits within
// `tolerance` (relative to the largest logit).
inline void expect_paged_sequences_match_separate(const model::Llama& llama, quant::Type kv_type, double tolerance,
                                                  int sequence_count = 3) {
    const PagedSequencesCase c = make_paged_sequences_case(7, sequence_count);
    const int64_t vocab = llama.hparams().vocab_size;
    const int sequences = static_cast<int>(c.prompts.size());

    // Alone: the logits of each pass's last row, per sequence, in pass order.
    std::vector<std::vector<std::vector<float>>> alone(sequences);
    for (int s = 0; s < sequences; ++s) {
        auto cache = llama.create_kv_cache(256, kv_type);
        model::LlamaWorkspace ws = llama.make_workspace(128);
        std::vector<float> logits(static_cast<size_t>(vocab));
        int64_t position = 0;
        const auto pass = [&](std::span<const int32_t> tokens) {
            llama.forward(ws, *cache, tokens, position, logits);
            position += static_cast<int64_t>(tokens.size());
            alone[s].push_back(logits);
        };
        pass(c.prompts[s]);
        for (const auto& step : c.steps) pass(std::span(step).subspan(s, 1));
        pass(c.last[s]);
    }

    // Together: blocks handed out a block at a time in turn, after two taken by another sequence.
    const int64_t pool_blocks = 2 * sequences + 6;
    runtime::KvBlockPool pool(pool_blocks);
    auto cache = llama.create_kv_cache(pool_blocks * backend::kKvBlockSize, kv_type);
    ASSERT_TRUE(pool.grow(99, 2 * backend::kKvBlockSize));
    std::vector<int64_t> length(sequences, 0), final_length(sequences, 0);
    for (int s = 0; s < sequences; ++s)
        final_length[s] = static_cast<int64_t>(c.prompts[s].size() + c.steps.size() + c.last[s].size());
    for (int64_t blocks = 1; blocks <= 2; ++blocks)
        for (int s = 0; s < sequences; ++s)
            ASSERT_TRUE(pool.grow(s, std::min(final_length[s], blocks * backend::kKvBlockSize)));
    ASSERT_NE(pool.blocks_of(0)[0] + 1, pool.blocks_of(0)[1]) << "the test wants a sequence's blocks apart";
    std::vector<int> order(sequences);
    for (int s = 0; s < sequences; ++s) order[s] = s;
    std::vector<int32_t> tables;
    const int64_t stride = pool.tables(order, tables);

    int64_t widest = 0;  // rows of the mixed pass
    for (const auto& t : c.last) widest += static_cast<int64_t>(t.size());
    model::LlamaWorkspace ws = llama.make_workspace(std::max<int64_t>(128, widest), std::max<int64_t>(32, widest));
    // One pass of the given tokens per sequence (in sequence order), all logits.
    const auto pass = [&](const std::vector<std::vector<int32_t>>& per_sequence, std::vector<float>& logits,
                          bool all_logits) {
        std::vector<int32_t> tokens, positions, sequence_of;
        for (int s = 0; s < sequences; ++s) {
            for (int32_t t : per_sequence[s]) {
                tokens.push_back(t);
                positions.push_back(static_cast<int32_t>(length[s]++));
                sequence_of.push_back(s);
            }
        }
        logits.assign((all_logits ? tokens.size() : 1) * static_cast<size_t>(vocab), 0.0f);
        const backend::KvBatch rows{positions, sequence_of, tables, stride};
        llama.forward(ws, *cache, tokens, rows, logits, all_logits);
        if (!all_logits) return;
        // The same pass again (it writes the same keys and values) for its greedy tokens alone.
        std::vector<int32_t> next(tokens.size(), -1);
        llama.forward_greedy(ws, *cache, tokens, rows, next);
        for (size_t r = 0; r < tokens.size(); ++r) {
            const auto row = std::span<const float>(logits).subspan(r * static_cast<size_t>(vocab), vocab);
            EXPECT_EQ(next[r], std::max_element(row.begin(), row.end()) - row.begin()) << "greedy token of row " << r;
        }
    };
    // The last row of sequence s in a pass's logits.
    const auto last_row_of = [&](const std::vector<std::vector<int32_t>>& per_sequence, const std::vector<float>& logits,
                                 int s) {
        int64_t row = -1;
        for (int i = 0; i <= s; ++i) row += static_cast<int64_t>(per_sequence[i].size());
        return std::span<const float>(logits).subspan(static_cast<size_t>(row * vocab), static_cast<size_t>(vocab));
    };
    std::vector<float> logits;
    double worst = 0;
    const auto gap = [&](std::span<const float> together, std::span<const float> by_itself) {
        const double g = relative_gap(together, by_itself);
        worst = std::max(worst, g);
        return g;
    };
    for (int s = 0; s < sequences; ++s) {
        // Each prompt alone in its pass, its last row's logits (a pass of all three prompts would
        // need 179 rows of logits).
        std::vector<std::vector<int32_t>> only(sequences);
        only[s] = c.prompts[s];
        pass(only, logits, false);
        EXPECT_LE(gap(logits, alone[s][0]), tolerance) << "prompt of sequence " << s;
    }
    for (size_t step = 0; step < c.steps.size(); ++step) {
        std::vector<std::vector<int32_t>> one_each;
        for (int s = 0; s < sequences; ++s) one_each.push_back({c.steps[step][s]});
        pass(one_each, logits, true);
        for (int s = 0; s < sequences; ++s)
            EXPECT_LE(gap(last_row_of(one_each, logits, s), alone[s][1 + step]), tolerance)
                << "step " << step << ", sequence " << s;
    }
    pass(c.last, logits, true);
    for (int s = 0; s < sequences; ++s)
        EXPECT_LE(gap(last_row_of(c.last, logits, s), alone[s].back()), tolerance) << "mixed pass, sequence " << s;
    std::printf("paged sequences: largest gap %.2e of the largest logit (bar %.0e)\n", worst, tolerance);
}

}  // namespace hearth::testing
