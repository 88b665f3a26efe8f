// KL divergence of a model's next-token distributions from a base model's (usually its F16
// original), over the same tokens, in llama-perplexity's file format so base files are
// interchangeable with llama.cpp both ways:
//   "_logits_", u32 n_ctx, i32 n_vocab, i32 n_chunk, i32 tokens[n_chunk · n_ctx] (as tokenized,
//   before each chunk's BOS), then for every chunk its scored positions (n_ctx/2 .. n_ctx − 2),
//   each a record of 2·⌈n_vocab/2⌉ + 4 u16: f32 scale, f32 min_log_prob, then each token's log
//   probability as round((lp − min_log_prob)/scale), with lp clamped from below at 16 under the
//   largest (0 for the ones below).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "measure/perplexity.h"

namespace hearth::measure {

// u16 values per scored position.
int64_t log_prob_record_size(int64_t vocab);

// One scored position's record from its logits.
void encode_log_probs(std::span<const float> logits, std::span<uint16_t> record);

// The log probability of `token` a record holds.
float decoded_log_prob(std::span<const uint16_t> record, int32_t token);

struct KldBaseHeader {
    int64_t n_ctx = 0;
    int64_t vocab = 0;
    int64_t chunks = 0;
    std::vector<int32_t> tokens;  // chunks · n_ctx

    int64_t scored_per_chunk() const { return n_ctx - 1 - n_ctx / 2; }
};

// Writes a base file while perplexity runs over the chunks; appears whole at commit().
class KldBaseWriter {
  public:
    KldBaseWriter(const std::filesystem::path& path, const KldBaseHeader& header);
    void add(std::span<const float> logits);  // the next scored position, in order
    void commit();

  private:
    AtomicFile file_;
    std::vector<uint16_t> record_;
    int64_t expected_ = 0, written_ = 0;
};

// The header of a base file, checked against its size; throws hearth::Error naming the file for
// anything that is not a whole base file.
KldBaseHeader read_kld_base_header(const std::filesystem::path& path);

struct KldResult {
    PerplexityResult perplexity;  // of the model under test, with its sums of negative log-likelihoods
    // Sums over the scored positions of the base's negative log-likelihoods, and of their
    // products with the model's.
    double sum_nll_base = 0, sum_nll_base2 = 0, sum_nll_products = 0;
    std::vector<float> kld;     // KL(base || model) per scored position, in order
    std::vector<float> p_diff;  // p(next token) − p_base(next token)
    int64_t same_top = 0;       // positions where both put the same token on top
};

// Runs `model` over the chunks of the base file at `base` (whose header, read_kld_base_header's,
// is `header`) and compares each scored position with the base. Throws hearth::Error when the
// vocabularies differ or the chunks do not fit the context.
KldResult compute_kl_divergence(const runtime::LoadedModel& model, const std::filesystem::path& base,
                                const KldBaseHeader& header,
                                const std::function<void(const PerplexityResult&)>& after_chunk = {});

// llama-perplexity's summary: PPL statistics, KLD mean and percentiles, Δp and same top.
std::string format_kl_divergence(const KldResult& result);

}  // namespace hearth::measure
