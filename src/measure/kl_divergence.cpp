#include "measure/kl_divergence.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "common/error.h"
#include "measure/statistics.h"

namespace hearth::measure {
namespace {

constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr size_t kHeaderBytes = sizeof(kMagic) + 3 * sizeof(int32_t);
// Log probabilities more than this far below the largest are stored as the floor.
constexpr float kLogProbRange = 16.0f;

// The size a file with this (checked: every count positive and below 2^24) header must have.
// The largest headers make sizes past 2^64 bytes, which no file has: those saturate.
uint64_t base_file_bytes(const KldBaseHeader& h) {
    using Wide = unsigned __int128;
    const Wide bytes = Wide{kHeaderBytes} + Wide(h.chunks) * Wide(h.n_ctx) * sizeof(int32_t) +
                       Wide(h.chunks) * Wide(h.scored_per_chunk()) * Wide(log_prob_record_size(h.vocab)) * sizeof(uint16_t);
    return bytes > Wide{UINT64_MAX} ? UINT64_MAX : static_cast<uint64_t>(bytes);
}

float record_float(std::span<const uint16_t> record, int index) {
    float value;
    std::memcpy(&value, record.data() + 2 * index, sizeof value);
    return value;
}

// Mean and its standard error, as llama-perplexity gives them (no error below 11 values).
std::pair<double, double> mean_and_error(double sum, double squares, size_t count) {
    if (count < 1) return {0, 0};
    const double mean = sum / static_cast<double>(count);
    const double variance = squares / static_cast<double>(count) - mean * mean;
    return {mean, variance > 0 && count > 10 ? std::sqrt(variance / static_cast<double>(count - 1)) : 0};
}

double median(const std::vector<float>& sorted) {
    const size_t n = sorted.size();
    return n % 2 == 0 ? 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[n / 2];
}

}  // namespace

int64_t log_prob_record_size(int64_t vocab) { return 2 * ((vocab + 1) / 2) + 4; }

void encode_log_probs(std::span<const float> logits, std::span<uint16_t> record) {
    const auto [smallest, largest] = std::minmax_element(logits.begin(), logits.end());
    const float max_logit = *largest;
    const float min_logit = std::max(*smallest, max_logit - kLogProbRange);
    double sum = 0;
    for (const float logit : logits) sum += std::exp(static_cast<double>(logit) - max_logit);
    const float log_sum = static_cast<float>(std::log(sum));
    const float min_log_prob = min_logit - max_logit - log_sum;
    const float scale = (max_logit - min_logit) / 65535.0f;
    std::memcpy(record.data(), &scale, sizeof scale);
    std::memcpy(record.data() + 2, &min_log_prob, sizeof min_log_prob);
    std::fill(record.begin() + 4, record.end(), uint16_t{0});
    if (scale == 0) return;
    const float inverse = 1 / scale;
    for (size_t i = 0; i < logits.size(); ++i) {
        if (logits[i] > min_logit)
            record[4 + i] = static_cast<uint16_t>(std::lround(std::min(65535.0f, inverse * (logits[i] - min_logit))));
    }
}

float decoded_log_prob(std::span<const uint16_t> record, int32_t token) {
    return record_float(record, 0) * static_cast<float>(record[4 + static_cast<size_t>(token)]) +
           record_float(record, 1);
}

KldBaseWriter::KldBaseWriter(const std::filesystem::path& path, const KldBaseHeader& header)
    : file_(path),
      record_(static_cast<size_t>(log_prob_record_size(header.vocab))),
      expected_(header.chunks * header.scored_per_chunk()) {
    file_.write(std::span(reinterpret_cast<const uint8_t*>(kMagic), sizeof kMagic));
    const uint32_t n_ctx = static_cast<uint32_t>(header.n_ctx);
    const int32_t counts[2] = {static_cast<int32_t>(header.vocab), static_cast<int32_t>(header.chunks)};
    file_.write(std::span(reinterpret_cast<const uint8_t*>(&n_ctx), sizeof n_ctx));
    file_.write(std::span(reinterpret_cast<const uint8_t*>(counts), sizeof counts));
    file_.write(std::span(reinterpret_cast<const uint8_t*>(header.tokens.data()), header.tokens.size() * sizeof(int32_t)));
}

void KldBaseWriter::add(std::span<const float> logits) {
    encode_log_probs(logits, record_);
    file_.write(std::span(reinterpret_cast<const uint8_t*>(record_.data()), record_.size() * sizeof(uint16_t)));
    ++written_;
}

void KldBaseWriter::commit() {
    if (written_ != expected_) fail("KL-divergence base: {} positions written, {} expected", written_, expected_);
    file_.commit();
}

KldBaseHeader read_kld_base_header(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("KL-divergence base '{}': cannot open it", path.string());
    char magic[sizeof kMagic];
    uint32_t n_ctx = 0;
    int32_t counts[2] = {0, 0};
    in.read(magic, sizeof magic);
    in.read(reinterpret_cast<char*>(&n_ctx), sizeof n_ctx);
    in.read(reinterpret_cast<char*>(counts), sizeof counts);
    if (!in || std::memcmp(magic, kMagic, sizeof magic) != 0)
        fail("KL-divergence base '{}': not a file of base log-probabilities (made with --kl-divergence-base)",
             path.string());
    KldBaseHeader header{n_ctx, counts[0], counts[1], {}};
    if (header.n_ctx < 2 || header.vocab < 1 || header.chunks < 1 || header.n_ctx > (int64_t{1} << 24) ||
        header.vocab > (int64_t{1} << 24) || header.chunks > (int64_t{1} << 24))
        fail("KL-divergence base '{}': impossible sizes (context {}, vocabulary {}, {} chunks)", path.string(),
             header.n_ctx, header.vocab, header.chunks);
    std::error_code error;
    const uint64_t size = std::filesystem::file_size(path, error);
    if (error || size != base_file_bytes(header))
        fail("KL-divergence base '{}': {} bytes, but a context of {}, a vocabulary of {} and {} chunks make {} "
             "(truncated, or not such a file)",
             path.string(), size, header.n_ctx, header.vocab, header.chunks, base_file_bytes(header));
    header.tokens.resize(static_cast<size_t>(header.chunks * header.n_ctx));
    in.read(reinterpret_cast<char*>(header.tokens.data()), static_cast<std::streamsize>(header.tokens.size() * 4));
    if (!in) fail("KL-divergence base '{}': cannot read its tokens", path.string());
    return header;
}

KldResult compute_kl_divergence(const runtime::LoadedModel& model, const std::filesystem::path& base,
                                const KldBaseHeader& header,
                                const std::function<void(const PerplexityResult&)>& after_chunk) {
    const int64_t vocab = model.hparams().vocab_size;
    if (header.vocab != vocab)
        fail("KL-divergence base '{}' was made with a vocabulary of {} tokens; this model has {}", base.string(),
             header.vocab, vocab);
    for (const int32_t token : header.tokens)
        if (token < 0 || token >= vocab) fail("KL-divergence base '{}': token {} is outside the vocabulary", base.string(), token);
    std::ifstream in(base, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(kHeaderBytes + header.tokens.size() * sizeof(int32_t)));
    std::vector<uint16_t> record(static_cast<size_t>(log_prob_record_size(vocab)));
    KldResult result;
    const auto compare = [&](std::span<const float> logits, int32_t next, double nll) {
        in.read(reinterpret_cast<char*>(record.data()), static_cast<std::streamsize>(record.size() * 2));
        if (!in) fail("KL-divergence base '{}': cannot read its log-probabilities", base.string());
        // The model's log-probabilities are logits[i] − log_norm, its softmax normalizer taken
        // from the perplexity's negative log-likelihood.
        const double log_norm = nll + logits[next];
        const auto top = std::max_element(logits.begin(), logits.end());
        const double nll_base = -decoded_log_prob(record, next);
        result.sum_nll_base += nll_base;
        result.sum_nll_base2 += nll_base * nll_base;
        result.sum_nll_products += nll * nll_base;
        // KL(base || model) over the tokens the base gives more than e^-16 of the top's share.
        double kld = 0;
        int32_t base_top = 0;
        float base_top_log_prob = 0;
        for (int32_t i = 0; i < static_cast<int32_t>(vocab); ++i) {
            const float base_log_prob = decoded_log_prob(record, i);
            if (i == 0 || base_log_prob > base_top_log_prob) {
                base_top_log_prob = base_log_prob;
                base_top = i;
            }
            if (base_log_prob > -kLogProbRange)
                kld += std::exp(static_cast<double>(base_log_prob)) * (base_log_prob - (logits[i] - log_norm));
        }
        result.kld.push_back(static_cast<float>(kld));
        if (top - logits.begin() == base_top) ++result.same_top;
        result.p_diff.push_back(static_cast<float>(std::exp(-nll) - std::exp(-nll_base)));
    };
    result.perplexity = compute_perplexity(model, header.tokens, header.n_ctx, header.chunks, after_chunk, compare);
    return result;
}

std::string format_kl_divergence(const KldResult& r) {
    const size_t n = r.kld.size();
    if (n == 0) return "no scored positions\n";
    const auto log_q = mean_and_error(r.perplexity.nll_sum, r.perplexity.nll_squares, n);
    const auto log_base = mean_and_error(r.sum_nll_base, r.sum_nll_base2, n);
    // The covariance of the two mean log-likelihoods (none below 10 values, as llama.cpp).
    const double covariance =
        n < 10 ? 0.0
               : (r.sum_nll_products / static_cast<double>(n) -
                  (r.perplexity.nll_sum / static_cast<double>(n)) * (r.sum_nll_base / static_cast<double>(n))) /
                     static_cast<double>(n - 1);
    const double ppl_q = std::exp(log_q.first);
    const double ppl_base = std::exp(log_base.first);
    const double ratio_log = log_q.first - log_base.first;
    const double ratio_error =
        std::sqrt(std::max(0.0, log_q.second * log_q.second + log_base.second * log_base.second - 2 * covariance));
    const double ppl_q_error = ppl_q * log_q.second, ppl_base_error = ppl_base * log_base.second;
    const double diff_error = std::sqrt(std::max(0.0, ppl_q_error * ppl_q_error + ppl_base_error * ppl_base_error -
                                                          2 * ppl_q * ppl_base * covariance));
    double kld_sum = 0, kld_squares = 0, p_sum = 0, p_squares = 0, p_fourth = 0;
    for (const float k : r.kld) {
        kld_sum += k;
        kld_squares += static_cast<double>(k) * k;
    }
    for (const float p : r.p_diff) {
        p_sum += p;
        p_squares += static_cast<double>(p) * p;
        p_fourth += static_cast<double>(p) * p * p * p;
    }
    const auto kld = mean_and_error(kld_sum, kld_squares, n);
    const auto p_diff = mean_and_error(p_sum, p_squares, n);
    const auto p_mse = mean_and_error(p_squares, p_fourth, n);
    const double same_top = static_cast<double>(r.same_top) / static_cast<double>(n);
    std::vector<float> klds = r.kld, diffs = r.p_diff;
    std::sort(klds.begin(), klds.end());
    std::sort(diffs.begin(), diffs.end());

    std::string out = "====== Perplexity statistics ======\n";
    out += fmt::format("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", ppl_q, ppl_q_error);
    out += fmt::format("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", ppl_base, ppl_base_error);
    if (log_q.second > 0 && log_base.second > 0)
        out += fmt::format("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n",
                           100 * covariance / (log_q.second * log_base.second));
    out += fmt::format("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", ratio_log, ratio_error);
    out += fmt::format("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", std::exp(ratio_log),
                       std::exp(ratio_log) * ratio_error);
    out += fmt::format("Mean PPL(Q)-PPL(base)         : {:10.6f} ± {:10.6f}\n\n", ppl_q - ppl_base, diff_error);
    out += "====== KL divergence statistics ======\n";
    out += fmt::format("Mean    KLD: {:10.6f} ± {:10.6f}\n", kld.first, kld.second);
    out += fmt::format("Maximum KLD: {:10.6f}\n", klds.back());
    for (const auto& [label, fraction] : {std::pair{"99.9%", 0.999}, std::pair{"99.0%", 0.99}, std::pair{"95.0%", 0.95},
                                          std::pair{"90.0%", 0.9}})
        out += fmt::format("{:<8}KLD: {:10.6f}\n", label, sorted_percentile<float>(klds, fraction));
    out += fmt::format("Median  KLD: {:10.6f}\n", median(klds));
    for (const auto& [label, fraction] : {std::pair{"10.0%", 0.1}, std::pair{" 5.0%", 0.05}, std::pair{" 1.0%", 0.01},
                                          std::pair{" 0.1%", 0.001}})
        out += fmt::format("{:<8}KLD: {:10.6f}\n", label, sorted_percentile<float>(klds, fraction));
    out += fmt::format("Minimum KLD: {:10.6f}\n\n", klds.front());
    out += "====== Token probability statistics ======\n";
    out += fmt::format("Mean    Δp: {:6.3f} ± {:5.3f} %\n", 100 * p_diff.first, 100 * p_diff.second);
    out += fmt::format("Maximum Δp: {:6.3f}%\n", 100 * diffs.back());
    out += fmt::format("Median  Δp: {:6.3f}%\n", 100 * median(diffs));
    out += fmt::format("Minimum Δp: {:6.3f}%\n", 100 * diffs.front());
    const double rms = std::sqrt(p_mse.first);
    out += fmt::format("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100 * rms, rms > 0 ? 100 * 0.5 / rms * p_mse.second : 0.0);
    out += fmt::format("Same top p: {:6.3f} ± {:5.3f} %\n", 100 * same_top,
                       n > 1 ? 100 * std::sqrt(same_top * (1 - same_top) / static_cast<double>(n - 1)) : 0.0);
    return out;
}

}  // namespace hearth::measure
