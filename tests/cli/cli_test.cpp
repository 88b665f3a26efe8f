// Runs the hearth binary as a user would and checks what it prints and how it exits.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/run_command.h"

namespace {

namespace fs = std::filesystem;

using Result = hearth::testing::CommandResult;

Result run_hearth(const std::string& arguments) {
    return hearth::testing::run_command(std::string(HEARTH_BINARY) + " " + arguments + " 2>&1");
}

class CliTest : public ::testing::Test {
protected:
    static inline fs::path dir_;
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("hearth-cli-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        const Result made = run_hearth("make-test-model --preset tiny --seed 9 -o " + (dir_ / "tiny.gguf").string());
        ASSERT_EQ(made.exit_code, 0) << made.output;
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }
    static std::string path(const char* name) { return (dir_ / name).string(); }
};

TEST_F(CliTest, HelpTeachesEveryVerb) {
    const Result help = run_hearth("--help");
    EXPECT_EQ(help.exit_code, 0);
    for (const char* verb : {"show", "quantize", "make-test-model"}) {
        EXPECT_NE(help.output.find(verb), std::string::npos) << verb;
    }
    const Result quantize_help = run_hearth("quantize --help");
    EXPECT_EQ(quantize_help.exit_code, 0);
    EXPECT_NE(quantize_help.output.find("Q4_K_M"), std::string::npos);
    EXPECT_NE(run_hearth("no-such-verb").exit_code, 0);
}

TEST_F(CliTest, ShowJsonDescribesTheModel) {
    const Result shown = run_hearth("show --json " + path("tiny.gguf"));
    ASSERT_EQ(shown.exit_code, 0) << shown.output;
    const auto json = nlohmann::json::parse(shown.output);
    EXPECT_EQ(json["architecture"], "llama");
    EXPECT_EQ(json["context_length"], 131072);
    EXPECT_EQ(json["tokenizer"]["tokens"], 128256);
    EXPECT_EQ(json["tokenizer"]["pre"], "llama-bpe");
    EXPECT_EQ(json["chat_template"], true);
    EXPECT_EQ(json["file_type"], "F16");
    EXPECT_EQ(json["tensor_types"]["f32"], 2 * 2 + 2);  // norms and rope_freqs
    EXPECT_EQ(json["tensor_types"]["f16"], 2 * 7 + 2);
    EXPECT_NEAR(json["bits_per_weight"].get<double>(), 16.0, 0.01);
    const Result table = run_hearth("show " + path("tiny.gguf"));
    EXPECT_EQ(table.exit_code, 0);
    EXPECT_NE(table.output.find("llama3 (rope_freqs.weight)"), std::string::npos) << table.output;
}

TEST_F(CliTest, QuantizeWritesTheMixAndShowsIt) {
    const Result quantized = run_hearth("quantize " + path("tiny.gguf") + " " + path("q4.gguf") + " Q4_K_M -t 2");
    ASSERT_EQ(quantized.exit_code, 0) << quantized.output;
    const auto json = nlohmann::json::parse(run_hearth("show --json " + path("q4.gguf")).output);
    EXPECT_EQ(json["file_type"], "Q4_K_M");
    // 2 layers: attn_v and ffn_down of layer 1, and output, at Q6_K; the other 2-D tensors Q4_K.
    EXPECT_EQ(json["tensor_types"]["q6_K"], 3);
    EXPECT_EQ(json["tensor_types"]["q4_K"], 2 * 7 - 2 + 1);
    EXPECT_GT(json["bits_per_weight"].get<double>(), 4.5);
    EXPECT_LT(json["bits_per_weight"].get<double>(), 6.0);
}

TEST_F(CliTest, BadInputGetsAClearErrorNotACrash) {
    Result r = run_hearth("quantize " + path("tiny.gguf") + " " + path("tiny.gguf") + " Q4_K_M");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("is the input file"), std::string::npos) << r.output;

    r = run_hearth("quantize " + path("tiny.gguf") + " " + path("x.gguf") + " Q4_K_Z");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("unknown type 'Q4_K_Z'"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(path("x.gguf")));

    r = run_hearth("show " + path("missing.gguf"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("missing.gguf"), std::string::npos) << r.output;

    {
        std::ofstream truncated(path("truncated.gguf"), std::ios::binary);
        std::ifstream whole(path("tiny.gguf"), std::ios::binary);
        std::string head(1000, '\0');
        whole.read(head.data(), head.size());
        truncated << head;
    }
    r = run_hearth("show " + path("truncated.gguf"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("truncated.gguf"), std::string::npos) << r.output;

    r = run_hearth("make-test-model --preset tiny --output-scale -1 -o " + path("neg.gguf"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("--output-scale"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(path("neg.gguf")));

    r = run_hearth("make-test-model --preset tiny -o /nonexistent-dir/x.gguf");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("/nonexistent-dir"), std::string::npos) << r.output;
}

}  // namespace
