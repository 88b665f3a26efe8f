#include "runtime/sampler.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "common/error.h"
#include "common/portable_exp.h"

namespace hearth {
namespace {

constexpr float kInfinity = std::numeric_limits<float>::infinity();

// The one order every step uses: higher logit first, then lower id. Being total, it makes every
// partial sort's result independent of the standard library's algorithm.
template <typename T>
bool ranks_before(const T& a, const T& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// A double sum in four interleaved lanes: four times the throughput of one running sum, and
// still one fixed order, so the result does not depend on the machine.
double sum_in_fixed_order(std::span<const float> values) {
    double lanes[4] = {0.0, 0.0, 0.0, 0.0};
    size_t i = 0;
    for (; i + 4 <= values.size(); i += 4) {
        for (size_t lane = 0; lane < 4; ++lane) {
            lanes[lane] += values[i + lane];
        }
    }
    for (; i < values.size(); ++i) {
        lanes[0] += values[i];
    }
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t random_seed() {
    std::random_device device;
    return (uint64_t{device()} << 32) ^ uint64_t{device()};
}

}  // namespace

void validate_sampler_params(const SamplerParams& params) {
    if (!(params.temperature >= 0.0f && std::isfinite(params.temperature))) {
        fail("sampler: temperature is {} but must be a finite number >= 0 (0 means greedy)",
             params.temperature);
    }
    if (params.top_k < 0) {
        fail("sampler: top_k is {} but must be >= 0 (0 disables it)", params.top_k);
    }
    if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
        fail("sampler: top_p is {} but must be in (0, 1] (1 disables it)", params.top_p);
    }
    if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) {
        fail("sampler: min_p is {} but must be in [0, 1] (0 disables it)", params.min_p);
    }
    if (!(params.repeat_penalty > 0.0f && std::isfinite(params.repeat_penalty))) {
        fail("sampler: repeat_penalty is {} but must be a finite number > 0 (1 disables it)",
             params.repeat_penalty);
    }
    if (params.repeat_last_n < 0) {
        fail("sampler: repeat_last_n is {} but must be >= 0 (0 disables the penalties; resolve "
             "-1 to the context length before creating the sampler)",
             params.repeat_last_n);
    }
    if (!std::isfinite(params.presence_penalty)) {
        fail("sampler: presence_penalty is {} but must be finite", params.presence_penalty);
    }
    if (!std::isfinite(params.frequency_penalty)) {
        fail("sampler: frequency_penalty is {} but must be finite", params.frequency_penalty);
    }
}

SamplerRng::SamplerRng(uint64_t seed) {
    for (uint64_t& word : state_) {
        word = splitmix64(seed);
    }
}

uint64_t SamplerRng::next() {
    const uint64_t result = std::rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = std::rotl(state_[3], 45);
    return result;
}

double SamplerRng::next_unit() {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

Sampler::Sampler(const SamplerParams& params, int32_t vocab_size)
    : params_(params),
      vocab_size_(vocab_size),
      seed_(params.seed ? *params.seed : random_seed()),
      rng_(seed_) {
    validate_sampler_params(params);
    if (vocab_size <= 0) {
        fail("sampler: vocab_size is {} but must be > 0", vocab_size);
    }
    if (params.repeat_last_n > 0) {
        recent_tokens_.reserve(static_cast<size_t>(params.repeat_last_n));
        recent_counts_.assign(static_cast<size_t>(vocab_size), 0);
    }
    candidates_.reserve(static_cast<size_t>(vocab_size));
}

void Sampler::accept(int32_t token) {
    if (token < 0 || token >= vocab_size_) {
        fail("sampler: accepted token {} is outside the vocabulary of {} tokens", token, vocab_size_);
    }
    const auto window = static_cast<size_t>(params_.repeat_last_n);
    if (window == 0) {
        return;
    }
    if (recent_tokens_.size() < window) {
        recent_tokens_.push_back(token);
    } else {
        const int32_t left = --recent_counts_[static_cast<size_t>(recent_tokens_[recent_next_])];
        distinct_in_window_ -= left == 0;
        recent_tokens_[recent_next_] = token;
        recent_next_ = (recent_next_ + 1) % window;
    }
    distinct_in_window_ += ++recent_counts_[static_cast<size_t>(token)] == 1;
}

void Sampler::reset() {
    for (const int32_t token : recent_tokens_) {
        --recent_counts_[static_cast<size_t>(token)];
    }
    recent_tokens_.clear();
    recent_next_ = 0;
    distinct_in_window_ = 0;
    rng_ = SamplerRng(seed_);
}

void Sampler::load_penalized_logits(std::span<const float> logits) {
    if (logits.size() != static_cast<size_t>(vocab_size_)) {
        fail("sampler: got {} logits but the vocabulary has {} tokens", logits.size(), vocab_size_);
    }
    // One branch-free pass over the bit patterns (integer compares vectorize where the float
    // ones did not); the message is built only on failure. NaN: magnitude above +inf's pattern.
    constexpr uint32_t kPositiveInfinityBits = 0x7f800000u;
    constexpr uint32_t kNegativeInfinityBits = 0xff800000u;
    uint32_t invalid_bits = 0;
    uint32_t allowed_bits = 0;
    for (const float logit : logits) {
        const uint32_t bits = std::bit_cast<uint32_t>(logit);
        invalid_bits |= static_cast<uint32_t>((bits & 0x7fffffffu) > kPositiveInfinityBits) |
                        static_cast<uint32_t>(bits == kPositiveInfinityBits);
        allowed_bits |= static_cast<uint32_t>(bits != kNegativeInfinityBits);
    }
    const bool any_invalid = invalid_bits != 0;
    const bool any_allowed = allowed_bits != 0;
    if (any_invalid) {
        const auto bad = std::find_if(logits.begin(), logits.end(),
                                      [](float logit) { return std::isnan(logit) || logit == kInfinity; });
        fail("sampler: the logit of token {} is {}; logits must be finite or -inf",
             bad - logits.begin(), *bad);
    }
    candidates_.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) {
        candidates_[i] = {static_cast<int32_t>(i), logits[i]};
    }
    if (!any_allowed) {
        fail("sampler: every one of the {} logits is -inf, so no token can be sampled",
             logits.size());
    }
    penalize_candidates(true);
}

void Sampler::load_penalized_top(std::span<const int32_t> tokens, std::span<const float> logits) {
    const int32_t needed = top_logits_needed();
    if (needed == 0) {
        fail("sampler: these settings need every logit, not the largest");
    }
    if (tokens.size() != logits.size() || logits.size() < static_cast<size_t>(needed)) {
        fail("sampler: {} tokens and {} of the largest logits given, {} needed", tokens.size(),
             logits.size(), needed);
    }
    candidates_.resize(logits.size());
    bool any_allowed = false;
    for (size_t i = 0; i < logits.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= vocab_size_) {
            fail("sampler: token {} is outside the vocabulary of {} tokens", tokens[i], vocab_size_);
        }
        if (std::isnan(logits[i]) || logits[i] == kInfinity) {
            fail("sampler: the logit of token {} is {}; logits must be finite or -inf", tokens[i],
                 logits[i]);
        }
        any_allowed = any_allowed || logits[i] != -kInfinity;
        candidates_[i] = {tokens[i], logits[i]};
    }
    if (!any_allowed) {  // the largest are -inf, so all are
        fail("sampler: every one of the {} logits is -inf, so no token can be sampled",
             vocab_size_);
    }
    penalize_candidates(false);
}

bool Sampler::penalties_off() const {
    return params_.repeat_penalty == 1.0f && params_.presence_penalty == 0.0f &&
           params_.frequency_penalty == 0.0f;
}

void Sampler::penalize_candidates(bool candidates_in_id_order) {
    if (recent_tokens_.empty() || penalties_off()) {
        return;
    }
    // Each distinct token in the window is penalized once, with its count (llama.cpp's
    // penalties sampler: repeat divides positive logits and multiplies the others).
    auto penalize = [&](int32_t token, float& logit) {
        const int32_t count = recent_counts_[static_cast<size_t>(token)];
        if (logit <= 0.0f) {
            logit *= params_.repeat_penalty;
        } else {
            logit /= params_.repeat_penalty;
        }
        logit -= static_cast<float>(count) * params_.frequency_penalty +
                 static_cast<float>(count > 0) * params_.presence_penalty;
    };
    if (!candidates_in_id_order) {  // a row's largest: each candidate is a distinct token
        for (Candidate& candidate : candidates_) {
            if (recent_counts_[static_cast<size_t>(candidate.id)] > 0) {
                penalize(candidate.id, candidate.logit);
            }
        }
        return;
    }
    distinct_recent_.assign(recent_tokens_.begin(), recent_tokens_.end());
    std::sort(distinct_recent_.begin(), distinct_recent_.end());
    distinct_recent_.erase(std::unique(distinct_recent_.begin(), distinct_recent_.end()),
                           distinct_recent_.end());
    for (const int32_t token : distinct_recent_) {
        penalize(token, candidates_[static_cast<size_t>(token)].logit);
    }
}

int32_t Sampler::top_logits_needed() const {
    const bool greedy = params_.temperature == 0.0f;
    if (!greedy && params_.top_k == 0) {
        return 0;
    }
    if (params_.repeat_penalty < 1.0f || params_.presence_penalty < 0.0f ||
        params_.frequency_penalty < 0.0f) {
        return 0;
    }
    const int64_t penalized = penalties_off() ? 0 : distinct_in_window_;
    const int64_t needed = (greedy ? 1 : params_.top_k) + penalized;
    return needed >= vocab_size_ ? 0 : static_cast<int32_t>(needed);
}

void Sampler::keep_top_k(int32_t k) {
    // A heap selection: about one comparison per token when k is small, no full sort.
    const auto kept = static_cast<std::ptrdiff_t>(k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + kept, candidates_.end(),
                      ranks_before<Candidate>);
    candidates_.resize(static_cast<size_t>(k));
}

void Sampler::keep_top_p(float p, bool sorted) {
    // Probabilities at temperature 1 (llama.cpp's top-p runs before the temperature).
    float max_logit = -kInfinity;
    for (const Candidate& candidate : candidates_) {
        max_logit = std::max(max_logit, candidate.logit);
    }
    weights_.resize(candidates_.size());
    for (size_t i = 0; i < candidates_.size(); ++i) {
        weights_[i] = portable_exp(candidates_[i].logit - max_logit);
    }
    const double total = sum_in_fixed_order(weights_);
    const double target = static_cast<double>(p) * total;

    if (sorted) {
        double cumulative = 0.0;
        for (size_t i = 0; i < candidates_.size(); ++i) {
            cumulative += weights_[i];
            if (cumulative >= target) {
                candidates_.resize(i + 1);
                return;
            }
        }
        return;
    }

    // Unsorted (no top-k): bucket the tokens by logit, find the bucket where the cumulative
    // mass from the top crosses the target, and sort only that bucket. Buckets are monotone in
    // the logit, so every token above the boundary bucket outranks every token in it.
    constexpr int kBuckets = 1024;
    constexpr float kBucketedLogitSpan = 32.0f;  // below max - 32 a weight is < 1.3e-14: bucket 0
    const float lowest = max_logit - kBucketedLogitSpan;
    const float scale = static_cast<float>(kBuckets) / kBucketedLogitSpan;
    auto bucket_of = [&](float logit) {
        if (!(logit > lowest)) {
            return 0;
        }
        return std::min(kBuckets - 1, static_cast<int>((logit - lowest) * scale));
    };
    std::array<double, kBuckets> bucket_mass{};
    std::array<size_t, kBuckets> bucket_size{};
    for (size_t i = 0; i < candidates_.size(); ++i) {
        const int bucket = bucket_of(candidates_[i].logit);
        bucket_mass[static_cast<size_t>(bucket)] += weights_[i];
        ++bucket_size[static_cast<size_t>(bucket)];
    }
    double mass_above = 0.0;
    int boundary = kBuckets - 1;
    for (; boundary >= 0; --boundary) {
        if (mass_above + bucket_mass[static_cast<size_t>(boundary)] >= target) {
            break;
        }
        mass_above += bucket_mass[static_cast<size_t>(boundary)];
    }
    if (boundary < 0) {
        return;  // rounding kept the target out of reach: keep every token
    }

    // Tokens above the boundary keep their id order; the boundary bucket follows, sorted.
    scratch_.clear();
    size_t boundary_start = 0;
    for (int bucket = boundary + 1; bucket < kBuckets; ++bucket) {
        boundary_start += bucket_size[static_cast<size_t>(bucket)];
    }
    scratch_.resize(boundary_start + bucket_size[static_cast<size_t>(boundary)]);
    size_t above = 0;
    size_t at_boundary = boundary_start;
    for (const Candidate& candidate : candidates_) {
        const int bucket = bucket_of(candidate.logit);
        if (bucket > boundary) {
            scratch_[above++] = candidate;
        } else if (bucket == boundary) {
            scratch_[at_boundary++] = candidate;
        }
    }
    std::sort(scratch_.begin() + static_cast<std::ptrdiff_t>(boundary_start), scratch_.end(),
              ranks_before<Candidate>);
    double cumulative = mass_above;
    size_t kept = boundary_start;
    while (kept < scratch_.size()) {
        cumulative += portable_exp(scratch_[kept].logit - max_logit);
        ++kept;
        if (cumulative >= target) {
            break;
        }
    }
    scratch_.resize(kept);
    candidates_.swap(scratch_);
}

void Sampler::keep_min_p(float min_p) {
    // p >= min_p · p_max  ⇔  exp(logit - max_logit) >= min_p; the top token always stays.
    float max_logit = -kInfinity;
    for (const Candidate& candidate : candidates_) {
        max_logit = std::max(max_logit, candidate.logit);
    }
    std::erase_if(candidates_, [&](const Candidate& candidate) {
        return portable_exp(candidate.logit - max_logit) < min_p;
    });
}

void Sampler::apply_filters(bool top_only) {
    bool sorted = false;
    const int32_t top_k = params_.top_k;
    if (top_only) {
        keep_top_k(std::min(top_k, static_cast<int32_t>(candidates_.size())));
        sorted = true;
    } else if (top_k > 0 && static_cast<size_t>(top_k) < candidates_.size()) {
        keep_top_k(top_k);
        sorted = true;
    }
    if (params_.top_p < 1.0f) {
        keep_top_p(params_.top_p, sorted);
    }
    if (params_.min_p > 0.0f) {
        keep_min_p(params_.min_p);
    }
}

double Sampler::temperature_weights() {
    float max_logit = -kInfinity;
    for (const Candidate& candidate : candidates_) {
        max_logit = std::max(max_logit, candidate.logit);
    }
    weights_.resize(candidates_.size());
    for (size_t i = 0; i < candidates_.size(); ++i) {
        weights_[i] = portable_exp((candidates_[i].logit - max_logit) / params_.temperature);
    }
    return sum_in_fixed_order(weights_);
}

int32_t Sampler::greedy_token() const {
    // The total order keeps the lowest id on ties, whatever order candidates_ is in.
    size_t best = 0;
    for (size_t i = 1; i < candidates_.size(); ++i) {
        if (ranks_before(candidates_[i], candidates_[best])) {
            best = i;
        }
    }
    return candidates_[best].id;
}

int32_t Sampler::sample(std::span<const float> logits) {
    load_penalized_logits(logits);
    return choose(false);
}

int32_t Sampler::sample_top(std::span<const int32_t> tokens, std::span<const float> logits) {
    load_penalized_top(tokens, logits);
    return choose(true);
}

int32_t Sampler::choose(bool top_only) {
    if (params_.temperature == 0.0f) {
        return greedy_token();
    }
    apply_filters(top_only);
    const double total = temperature_weights();
    const double threshold = rng_.next_unit() * total;
    double cumulative = 0.0;
    size_t last_positive = 0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
        if (weights_[i] > 0.0f) {
            cumulative += weights_[i];
            last_positive = i;
            if (threshold < cumulative) {
                return candidates_[i].id;
            }
        }
    }
    return candidates_[last_positive].id;  // the sum rounded below the threshold
}

std::vector<TokenProbability> Sampler::distribution(std::span<const float> logits) {
    load_penalized_logits(logits);
    if (params_.temperature == 0.0f) {
        return {{greedy_token(), 1.0f}};
    }
    apply_filters(false);
    const double total = temperature_weights();
    struct Ranked {
        int32_t id;
        float logit;
        float weight;
    };
    std::vector<Ranked> ranked;
    for (size_t i = 0; i < candidates_.size(); ++i) {
        if (weights_[i] > 0.0f) {
            ranked.push_back({candidates_[i].id, candidates_[i].logit, weights_[i]});
        }
    }
    std::sort(ranked.begin(), ranked.end(), ranks_before<Ranked>);
    std::vector<TokenProbability> result;
    result.reserve(ranked.size());
    for (const Ranked& token : ranked) {
        result.push_back({token.id, static_cast<float>(token.weight / total)});
    }
    return result;
}

}  // namespace hearth
