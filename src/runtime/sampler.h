// The sampler: turns one row of logits into the next token.
//
// The chain and its semantics follow llama.cpp's default sampler chain (src/llama-sampler.cpp),
// restricted to the steps Ollama exposes, in this order:
//   penalties (repeat, frequency, presence over the last `repeat_last_n` accepted tokens)
//   → top-k → top-p → min-p → temperature → draw from the softmax.
// top-p and min-p therefore see the penalized logits at temperature 1, as in llama.cpp.
//
// Determinism: the draw uses our own generator (xoshiro256** seeded by splitmix64), our own
// uniform from its bits and our own exp (plain IEEE float arithmetic, no libm), and every
// ordering uses a total order (logit descending, then id ascending). The same seed, settings,
// logits and accepted tokens give the same tokens on any machine and any standard library.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace hearth {

// Defaults are Ollama's (api/types.go DefaultOptions), so a request that sets nothing samples as
// it would under Ollama.
struct SamplerParams {
    // Divides the logits before the final softmax. 0 means greedy: the highest penalized logit,
    // ties to the lowest token id, no random draw. Must be finite and >= 0.
    float temperature = 0.8f;
    // Keep only the k most likely tokens. 0 disables the filter; k >= vocab size keeps all.
    int32_t top_k = 40;
    // Keep the smallest set of most likely tokens whose probability sums to at least top_p
    // (at least one token). In (0, 1]; 1 disables the filter.
    float top_p = 0.9f;
    // Keep tokens whose probability is at least min_p times the most likely one's. In [0, 1];
    // 0 disables the filter.
    float min_p = 0.0f;
    // Penalizes every token seen in the last repeat_last_n accepted tokens, once, whatever its
    // count: a positive logit is divided by it, a negative one multiplied. > 0; 1 disables it.
    float repeat_penalty = 1.1f;
    // How many of the most recently accepted tokens the three penalties look at. >= 0; 0
    // disables all penalties. (Ollama's -1, "the context length", is for the caller to resolve.)
    int32_t repeat_last_n = 64;
    // Subtracted once from the logit of every token seen in the window (OpenAI's meaning).
    float presence_penalty = 0.0f;
    // Subtracted count times from the logit of a token seen count times in the window.
    float frequency_penalty = 0.0f;
    // The generator's seed. Empty: a fresh random seed per Sampler (Ollama's seed -1); read it
    // back with Sampler::seed() to reproduce a run.
    std::optional<uint64_t> seed;
};

// Throws hearth::Error naming the first parameter out of range.
void validate_sampler_params(const SamplerParams& params);

// One token of the distribution sample() draws from.
struct TokenProbability {
    int32_t token;
    float probability;
};

// xoshiro256** (Blackman & Vigna), seeded through splitmix64 as its authors recommend. Portable:
// only 64-bit integer arithmetic, so a seed gives the same sequence everywhere.
class SamplerRng {
public:
    explicit SamplerRng(uint64_t seed);
    uint64_t next();
    // Uniform in [0, 1): the top 53 bits of next() scaled by 2^-53.
    double next_unit();

private:
    uint64_t state_[4];
};

class Sampler {
public:
    // Throws hearth::Error on invalid params or vocab_size <= 0.
    Sampler(const SamplerParams& params, int32_t vocab_size);

    // Picks the next token from logits (one per vocabulary entry). Does not accept it: call
    // accept() with the token actually appended (and with prompt tokens, to penalize them too).
    // -inf logits mark forbidden tokens. Throws hearth::Error if logits has the wrong size,
    // holds a NaN or +inf, or forbids every token.
    int32_t sample(std::span<const float> logits);

    // How many of a row's largest logits sample_top() needs to choose as sample() would on the
    // whole row: with a top-k filter (or greedy, k = 1), the k largest and one more for each
    // distinct token in the penalty window. A penalty only lowers a logit, so no token outside
    // those ranks among the k after the penalties, and the filters after top-k see only the k.
    // 0 when the whole row is needed: no top-k filter, a penalty that can raise a logit
    // (repeat_penalty < 1, a negative presence or frequency penalty), or as many as the vocabulary.
    int32_t top_logits_needed() const;
    // sample() from the top_logits_needed() (or more) largest logits of a row, first first, and
    // their tokens, as backend::rank_top_k ranks them: the same token and the same generator
    // state as sample() on the whole row. Throws hearth::Error as sample() does, and if fewer
    // logits than needed are given.
    int32_t sample_top(std::span<const int32_t> tokens, std::span<const float> logits);

    // The distribution sample() draws from after every filter and the temperature, most likely
    // first (ties by lowest id); probabilities sum to 1. Uses no randomness. At temperature 0
    // it is the greedy token with probability 1.
    std::vector<TokenProbability> distribution(std::span<const float> logits);

    // Records a token in the penalty window. Throws hearth::Error if it is outside the vocab.
    void accept(int32_t token);

    // Forgets the accepted tokens and restarts the generator from the seed, so a reset sampler
    // repeats its first run.
    void reset();

    const SamplerParams& params() const { return params_; }
    uint64_t seed() const { return seed_; }

private:
    struct Candidate {
        int32_t id;
        float logit;
    };

    // Fills candidates_ with every token and its penalized logit; checks the logits.
    void load_penalized_logits(std::span<const float> logits);
    // The same from a row's largest logits only.
    void load_penalized_top(std::span<const int32_t> tokens, std::span<const float> logits);
    // The penalties, on candidates_: every token in id order (a whole row), or a row's largest.
    void penalize_candidates(bool candidates_in_id_order);
    bool penalties_off() const;
    // Picks from candidates_ (penalized): greedy, or through the filters and the temperature.
    int32_t choose(bool top_only);
    // Applies top-k, top-p and min-p to candidates_. With top_only, candidates_ holds a row's
    // largest logits and top-k always sorts them (as it would sort the whole row).
    void apply_filters(bool top_only);
    void keep_top_k(int32_t k);
    void keep_top_p(float p, bool sorted);
    void keep_min_p(float min_p);
    // Fills weights_ with exp((logit - max) / temperature) per candidate; returns their sum.
    double temperature_weights();
    int32_t greedy_token() const;

    SamplerParams params_;
    int32_t vocab_size_;
    uint64_t seed_;
    SamplerRng rng_;

    // The last repeat_last_n accepted tokens, as a ring, and how often each token occurs in it.
    std::vector<int32_t> recent_tokens_;
    size_t recent_next_ = 0;
    std::vector<int32_t> recent_counts_;
    int64_t distinct_in_window_ = 0;

    // Scratch reused across calls so sampling allocates nothing after the first token.
    std::vector<Candidate> candidates_;
    std::vector<Candidate> scratch_;
    std::vector<float> weights_;
    std::vector<int32_t> distinct_recent_;
};

}  // namespace hearth
