#include "measure/kl_divergence.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/error.h"

namespace fs = std::filesystem;

namespace hearth::measure {
namespace {

std::vector<double> exact_log_softmax(const std::vector<float>& logits) {
    double top = logits[0];
    for (const float l : logits) top = std::max(top, double{l});
    double sum = 0;
    for (const float l : logits) sum += std::exp(l - top);
    std::vector<double> out;
    for (const float l : logits) out.push_back(l - top - std::log(sum));
    return out;
}

// A record keeps each log probability to within half its step, (largest − floor)/65535, where the
// floor is 16 below the largest logit; everything under the floor reads back as the floor.
TEST(KlDivergence, RecordsKeepLogProbabilitiesToHalfAStep) {
    std::mt19937 rng(4);
    std::normal_distribution<float> normal(0, 4);
    std::vector<float> logits(1001);  // odd: the record pads to an even count
    for (float& l : logits) l = normal(rng);
    logits[17] = 30;  // far above the rest: most fall under the floor
    std::vector<uint16_t> record(static_cast<size_t>(log_prob_record_size(1001)));
    EXPECT_EQ(record.size(), 1002u + 4);
    encode_log_probs(logits, record);
    const std::vector<double> exact = exact_log_softmax(logits);
    const double floor = exact[17] - 16;
    const double step = 16.0 / 65535;
    int below = 0;
    for (int32_t i = 0; i < 1001; ++i) {
        const double decoded = decoded_log_prob(record, i);
        if (exact[i] < floor) {
            ++below;
            EXPECT_NEAR(decoded, floor, 1e-4) << i;
        } else {
            EXPECT_NEAR(decoded, exact[i], step / 2 + 1e-5) << i;
        }
    }
    EXPECT_GT(below, 900);
}

class KldBaseFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hearth-kld-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    KldBaseHeader header() const { return {8, 5, 2, {1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1}}; }
    fs::path write_base(const std::string& name) const {
        const fs::path path = dir_ / name;
        KldBaseWriter writer(path, header());
        const std::vector<float> logits{0.5f, 1.0f, -2.0f, 3.0f, 0.0f};
        for (int i = 0; i < 2 * header().scored_per_chunk(); ++i) writer.add(logits);
        writer.commit();
        return path;
    }
    void expect_refused(const fs::path& path, const std::string& message) const {
        try {
            read_kld_base_header(path);
            FAIL() << "no error for " << path;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
        }
    }
    fs::path dir_;
};

// Header, tokens and records at the sizes llama-perplexity uses: 20 bytes, 4 per token, and
// 2·(2·⌈5/2⌉ + 4) = 20 per scored position (3 of each 8-token chunk).
TEST_F(KldBaseFileTest, WrittenFileReadsBackWhole) {
    const fs::path path = write_base("base.kld");
    EXPECT_EQ(fs::file_size(path), 20u + 16 * 4 + 2 * 3 * 20);
    const KldBaseHeader read = read_kld_base_header(path);
    EXPECT_EQ(read.n_ctx, 8);
    EXPECT_EQ(read.vocab, 5);
    EXPECT_EQ(read.chunks, 2);
    EXPECT_EQ(read.tokens, header().tokens);
}

TEST_F(KldBaseFileTest, TruncatedForeignAndIncompleteFilesAreRefused) {
    const fs::path path = write_base("base.kld");
    const fs::path truncated = dir_ / "truncated.kld";
    fs::copy_file(path, truncated);
    fs::resize_file(truncated, fs::file_size(path) - 2);
    expect_refused(truncated, "truncated, or not such a file");
    const fs::path foreign = dir_ / "foreign.kld";
    std::ofstream(foreign) << "GGUF and something else entirely";
    expect_refused(foreign, "not a file of base log-probabilities");
    expect_refused(dir_ / "missing.kld", "cannot open it");
    {
        KldBaseWriter writer(dir_ / "short.kld", header());
        EXPECT_THROW(writer.commit(), Error);  // no positions written
    }
    EXPECT_FALSE(fs::exists(dir_ / "short.kld"));
}

// The largest sizes the header may name make a file of ~2^71 bytes: refused by its size, with no
// overflow on the way (the fuzzer found one; UBSan in CI fails this test if it comes back).
TEST_F(KldBaseFileTest, LargestHeaderIsRefusedBySize) {
    const fs::path path = dir_ / "huge.kld";
    {
        std::ofstream out(path, std::ios::binary);
        out.write("_logits_", 8);
        const int32_t sizes[3] = {1 << 24, 1 << 24, 1 << 24};  // context, vocabulary, chunks
        out.write(reinterpret_cast<const char*>(sizes), sizeof sizes);
    }
    expect_refused(path, "bytes, but a context of 16777216");
}

}  // namespace
}  // namespace hearth::measure
